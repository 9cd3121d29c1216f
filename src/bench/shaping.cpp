#include "bench/shaping.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <tuple>

#include <fmt/format.h>

#include "core/error.h"
#include "core/units.h"

namespace morphserve::bench {
namespace {

// Scaled lengths above this are surely a mistake, and llround past int64 is undefined.
constexpr double kMaxTokens = 1e12;

void require_positive(double value, const char* name) {
  if (!(value > 0) || !std::isfinite(value))
    fail<InvalidArgument>("shaping: {} must be a finite number > 0, got {}", name, value);
}

void validate(const Shaping& s) {
  if (!(s.window_start >= 0) || !std::isfinite(s.window_start))
    fail<InvalidArgument>("shaping: the window start must be >= 0 seconds, got {}", s.window_start);
  if (!(s.window_length >= 0) || !std::isfinite(s.window_length))
    fail<InvalidArgument>("shaping: the window length must be >= 0 seconds, got {}", s.window_length);
  require_positive(s.time_scale, "time_scale");
  require_positive(s.rate_scale, "rate_scale");
  require_positive(s.prompt_scale, "prompt_scale");
  require_positive(s.output_scale, "output_scale");
  if (!(s.repeat_jitter_seconds >= 0) || !std::isfinite(s.repeat_jitter_seconds))
    fail<InvalidArgument>("shaping: repeat jitter must be >= 0 seconds, got {}", s.repeat_jitter_seconds);
  if (s.rate_scale > 1000) fail<InvalidArgument>("shaping: rate_scale {} is more than 1000", s.rate_scale);
  for (const auto& [name, lo, hi] : {std::tuple{"prompt", s.min_prompt, s.max_prompt}, std::tuple{"output", s.min_output, s.max_output}}) {
    if (lo < 0 || hi < 0) fail<InvalidArgument>("shaping: {} length limits must be >= 0, got min {} max {}", name, lo, hi);
    if (hi > 0 && lo > hi) fail<InvalidArgument>("shaping: minimum {} length {} is above its cap {}", name, lo, hi);
  }
  if (s.max_requests < 0) fail<InvalidArgument>("shaping: max_requests must be >= 0, got {}", s.max_requests);
}

int64_t scale_length(int64_t tokens, double scale, int64_t cap, int64_t floor) {
  const double scaled = std::min(static_cast<double>(tokens) * scale, kMaxTokens);
  int64_t n = std::llround(scaled);
  if (cap > 0) n = std::min(n, cap);
  return std::max(n, std::max<int64_t>(floor, 1));  // a request of zero tokens cannot be sent
}

std::string describe(const Shaping& s) {
  std::string d;
  if (s.window_start > 0 || s.window_length > 0) d += fmt::format(" window={}:{}", s.window_start, s.window_length);
  if (s.time_scale != 1) d += fmt::format(" time_scale={}", s.time_scale);
  if (s.rate_scale != 1) d += fmt::format(" rate_scale={} seed={}", s.rate_scale, s.seed);
  if (s.prompt_scale != 1) d += fmt::format(" prompt_scale={}", s.prompt_scale);
  if (s.output_scale != 1) d += fmt::format(" output_scale={}", s.output_scale);
  if (s.max_prompt > 0) d += fmt::format(" max_prompt={}", s.max_prompt);
  if (s.max_output > 0) d += fmt::format(" max_output={}", s.max_output);
  if (s.min_prompt > 1) d += fmt::format(" min_prompt={}", s.min_prompt);
  if (s.min_output > 1) d += fmt::format(" min_output={}", s.min_output);
  if (s.max_requests > 0) d += fmt::format(" max_requests={}", s.max_requests);
  return d;
}

}  // namespace

Workload shape(const Workload& in, const Shaping& s) {
  validate(s);
  Workload out;
  const std::string how = describe(s);
  out.source = how.empty() ? in.source : in.source + " |" + how;

  const double end = s.window_length > 0 ? s.window_start + s.window_length : INFINITY;
  std::mt19937_64 rng(s.seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const double whole = std::floor(s.rate_scale);
  const double fraction = s.rate_scale - whole;
  for (const WorkloadRequest& r : in.requests) {
    if (r.arrival_seconds < s.window_start || r.arrival_seconds >= end) continue;
    const double t = (r.arrival_seconds - s.window_start) * s.time_scale;
    // One draw per request whatever the scale, so a seed picks the same requests at any scale
    // with the same fraction.
    const int copies = static_cast<int>(whole) + (unit(rng) < fraction ? 1 : 0);
    for (int c = 0; c < copies; ++c) {
      const double jitter = c == 0 ? 0.0 : unit(rng) * s.repeat_jitter_seconds;
      out.requests.push_back({t + jitter,
                              scale_length(r.prompt_tokens, s.prompt_scale, s.max_prompt, s.min_prompt),
                              scale_length(r.output_tokens, s.output_scale, s.max_output, s.min_output)});
    }
  }
  // Jittered repeats may pass the next original; stable keeps equal times in trace order.
  std::stable_sort(out.requests.begin(), out.requests.end(),
                   [](const WorkloadRequest& a, const WorkloadRequest& b) { return a.arrival_seconds < b.arrival_seconds; });
  if (s.max_requests > 0 && out.requests.size() > static_cast<size_t>(s.max_requests))
    out.requests.resize(static_cast<size_t>(s.max_requests));
  return out;
}

Window parse_window(std::string_view text) {
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos)
    fail<InvalidArgument>("window '{}' must be START:LEN (e.g. 0:72 or 10m:90s)", text);
  Window w;
  w.start = parse_duration(text.substr(0, colon));
  const std::string_view length = text.substr(colon + 1);
  w.length = length.empty() ? 0.0 : parse_duration(length);
  if (!std::isfinite(w.start) || !std::isfinite(w.length))
    fail<InvalidArgument>("window '{}' must have finite times", text);
  return w;
}

}  // namespace morphserve::bench
