#pragma once
// Property checks inside fuzz targets. assert() would vanish under NDEBUG, and a violated property
// must always end the run: abort() makes libFuzzer report a crash and save the input.
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace morphserve::fuzz {

[[noreturn]] inline void property_failed(std::string_view what, std::string_view detail) {
  std::fprintf(stderr, "fuzz property violated: %.*s%s%.*s\n", static_cast<int>(what.size()), what.data(),
               detail.empty() ? "" : ": ", static_cast<int>(detail.size()), detail.data());
  std::abort();
}

inline void check(bool ok, std::string_view what, std::string_view detail = {}) {
  if (!ok) property_failed(what, detail);
}

}  // namespace morphserve::fuzz
