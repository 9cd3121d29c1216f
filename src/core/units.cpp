#include "core/units.h"

#include <cctype>
#include <charconv>
#include <cmath>

#include <fmt/format.h>

#include "core/error.h"

namespace morphserve {

namespace {

// Splits "1.5GiB" into 1.5 and "GiB"; throws when there is no number.
std::pair<double, std::string> split_number(std::string_view text, const char* what) {
  std::string s(text);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t start = 0;
  while (start < s.size() && std::isspace(static_cast<unsigned char>(s[start]))) ++start;
  double value = 0;
  const auto [end, ec] = std::from_chars(s.data() + start, s.data() + s.size(), value);
  if (ec != std::errc() || end == s.data() + start || !std::isfinite(value)) {
    fail<InvalidArgument>("'{}' is not a {}", text, what);
  }
  std::string unit(static_cast<const char*>(end), static_cast<const char*>(s.data() + s.size()));
  while (!unit.empty() && unit.front() == ' ') unit.erase(unit.begin());
  return {value, unit};
}

}  // namespace

uint64_t parse_size(std::string_view text) {
  const auto [value, unit] = split_number(text, "size (e.g. 480MiB, 3GiB or a byte count)");
  double scale = 0;
  static constexpr std::pair<const char*, double> kUnits[] = {
      {"", 1},           {"B", 1},           {"KiB", 1024.0},   {"MiB", 1048576.0}, {"GiB", 1073741824.0},
      {"TiB", 1099511627776.0}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"K", 1024.0},
      {"M", 1048576.0},  {"G", 1073741824.0}};
  for (const auto& [name, factor] : kUnits) {
    if (unit == name) scale = factor;
  }
  if (scale == 0) fail<InvalidArgument>("'{}': unknown size unit '{}' (use B, KiB, MiB, GiB, KB, MB or GB)", text, unit);
  const double bytes = value * scale;
  if (bytes < 0 || bytes >= 1.8e19) fail<InvalidArgument>("'{}' is not a usable size", text);
  return static_cast<uint64_t>(std::llround(bytes));
}

double parse_duration(std::string_view text) {
  const auto [value, unit] = split_number(text, "duration (e.g. 2s, 500ms or seconds)");
  double scale = 0;
  if (unit.empty() || unit == "s") scale = 1;
  if (unit == "ms") scale = 1e-3;
  if (unit == "m" || unit == "min") scale = 60;
  if (unit == "h") scale = 3600;
  if (scale == 0) fail<InvalidArgument>("'{}': unknown duration unit '{}' (use ms, s, m or h)", text, unit);
  if (value < 0) fail<InvalidArgument>("duration '{}' is negative", text);
  return value * scale;
}

std::string format_size(uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes) / 1024.0;
  int u = 0;
  while (value >= 1024.0 && u < 3) value /= 1024.0, ++u;
  return fmt::format("{:.1f} {}", value, units[u]);
}

}  // namespace morphserve
