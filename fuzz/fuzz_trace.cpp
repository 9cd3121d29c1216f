// libFuzzer target: the bench's trace parsers (bench/trace_loader.h). The first byte picks the
// format by its value mod 4 ('0' auto, '1' azure, '2' burstgpt, '3' mooncake); the rest is the
// trace text. Bad input must end in InvalidArgument; anything else is a finding.
//
// Properties of a workload that loaded (trace_loader.h, workload.h): at least one request, sorted
// by arrival, the first at 0, every arrival finite, token counts not negative, BurstGPT's failed
// (zero-output) rows dropped, and the source names the format; Auto gives what the detected
// format gives.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "bench/trace_loader.h"
#include "core/error.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace morphserve;
  using namespace morphserve::fuzz;
  using bench::TraceFormat;
  if (size == 0) return 0;
  static constexpr TraceFormat kFormats[] = {TraceFormat::Auto, TraceFormat::Azure, TraceFormat::BurstGpt,
                                             TraceFormat::Mooncake};
  const TraceFormat format = kFormats[data[0] % 4];
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  bench::Workload w;
  try {
    w = bench::parse_trace(text, "fuzz.trace", format);
  } catch (const InvalidArgument& e) {
    check(std::string_view(e.what()).starts_with("fuzz.trace: "), "an error does not name the trace", e.what());
    return 0;
  }
  check(!w.requests.empty(), "a workload without requests loaded");
  check(w.requests.front().arrival_seconds == 0.0, "the first request does not arrive at 0");
  for (size_t i = 0; i < w.requests.size(); ++i) {
    const bench::WorkloadRequest& r = w.requests[i];
    check(std::isfinite(r.arrival_seconds), "an arrival time is not finite", w.source);
    check(i == 0 || r.arrival_seconds >= w.requests[i - 1].arrival_seconds, "arrivals are not sorted");
    check(r.prompt_tokens >= 0 && r.output_tokens >= 0, "a token count is negative");
  }
  const size_t colon = w.source.find(':');
  check(colon != std::string::npos, "the source names no format", w.source);
  const TraceFormat loaded = bench::parse_trace_format(w.source.substr(0, colon));
  check(format == TraceFormat::Auto || loaded == format, "the source names another format", w.source);
  if (loaded == TraceFormat::BurstGpt) {
    for (const bench::WorkloadRequest& r : w.requests) check(r.output_tokens > 0, "a failed BurstGPT row was kept");
  }
  if (format == TraceFormat::Auto) {
    const bench::Workload again = bench::parse_trace(text, "fuzz.trace", loaded);
    check(again.source == w.source && again.requests.size() == w.requests.size(),
          "Auto gives another workload than the format it detected");
  }
  return 0;
}
