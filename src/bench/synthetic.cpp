#include "bench/synthetic.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <random>
#include <tuple>

#include <fmt/format.h>

#include "core/error.h"
#include "core/units.h"

namespace morphserve::bench {
namespace {

// A guard against a typo (rate=4000000,duration=1h) filling memory before anything is sent.
constexpr double kMaxRequests = 10'000'000;

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

int64_t parse_int(std::string_view key, std::string_view text) {
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size())
    fail<InvalidArgument>("synthetic spec: {}='{}' is not a whole number", key, text);
  return value;
}

double parse_number(std::string_view key, std::string_view text) {
  if (text == "inf") return std::numeric_limits<double>::infinity();
  double value = 0.0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || std::isnan(value))
    fail<InvalidArgument>("synthetic spec: {}='{}' is not a number", key, text);
  return value;
}

void parse_range(std::string_view key, std::string_view text, int64_t& lo, int64_t& hi) {
  const size_t dash = text.find('-', 1);  // from 1: "-5" is a (bad) number, not a range
  lo = parse_int(key, trim(text.substr(0, dash)));
  hi = dash == std::string_view::npos ? lo : parse_int(key, trim(text.substr(dash + 1)));
}

std::string format_range(int64_t lo, int64_t hi) {
  return lo == hi ? fmt::format("{}", lo) : fmt::format("{}-{}", lo, hi);
}

void validate(const SyntheticOptions& o) {
  if (!(o.rate > 0)) fail<InvalidArgument>("synthetic workload: rate must be > 0 requests/s, got {}", o.rate);
  if (!(o.burstiness > 0) || !std::isfinite(o.burstiness))
    fail<InvalidArgument>("synthetic workload: burstiness must be a finite number > 0, got {}", o.burstiness);
  if (o.requests < 0) fail<InvalidArgument>("synthetic workload: requests must be >= 0, got {}", o.requests);
  if (!(o.duration_seconds >= 0) || !std::isfinite(o.duration_seconds))
    fail<InvalidArgument>("synthetic workload: duration must be >= 0 seconds, got {}", o.duration_seconds);
  if (o.requests == 0 && o.duration_seconds == 0)
    fail<InvalidArgument>("synthetic workload: give a number of requests or a duration");
  if (std::isinf(o.rate) && o.requests == 0)
    fail<InvalidArgument>("synthetic workload: rate=inf needs a number of requests");
  const double expected = o.requests > 0 ? static_cast<double>(o.requests) : o.rate * o.duration_seconds;
  if (expected > kMaxRequests)
    fail<InvalidArgument>("synthetic workload: about {:.0f} requests is more than the {:.0f} allowed", expected, kMaxRequests);
  for (const auto& [name, lo, hi] : {std::tuple{"prompt", o.prompt_min, o.prompt_max}, std::tuple{"output", o.output_min, o.output_max}}) {
    if (lo < 1 || hi < lo)
      fail<InvalidArgument>("synthetic workload: {} lengths {}-{} must satisfy 1 <= min <= max", name, lo, hi);
  }
}

}  // namespace

Workload generate_synthetic(const SyntheticOptions& o) {
  validate(o);
  std::mt19937_64 rng(o.seed);
  // Shape k and scale 1/(rate·k) keep the mean gap at 1/rate whatever the burstiness; k = 1 is
  // the exponential gap of a Poisson process (vLLM benchmark_serving does the same).
  std::gamma_distribution<double> gap(o.burstiness, 1.0 / (o.rate * o.burstiness));
  std::uniform_int_distribution<int64_t> prompt(o.prompt_min, o.prompt_max);
  std::uniform_int_distribution<int64_t> output(o.output_min, o.output_max);

  Workload workload;
  workload.source = to_spec(o);
  double t = 0.0;  // the first request opens the run
  while (o.requests == 0 || static_cast<int64_t>(workload.requests.size()) < o.requests) {
    if (o.duration_seconds > 0 && t >= o.duration_seconds) break;
    // Lengths are drawn before the gap so that a request's lengths do not depend on the rate.
    const int64_t p = prompt(rng);
    const int64_t n = output(rng);
    workload.requests.push_back({t, p, n});
    if (std::isfinite(o.rate)) t += gap(rng);
  }
  return workload;
}

bool is_synthetic_spec(std::string_view text) { return text.starts_with("synthetic:"); }

SyntheticOptions parse_synthetic_spec(std::string_view spec) {
  if (!is_synthetic_spec(spec))
    fail<InvalidArgument>("synthetic spec '{}' must start with 'synthetic:'", spec);
  std::string_view rest = spec.substr(std::string_view("synthetic:").size());
  SyntheticOptions o;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string_view item = trim(rest.substr(0, comma));
    rest.remove_prefix(comma == std::string_view::npos ? rest.size() : comma + 1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos)
      fail<InvalidArgument>("synthetic spec: '{}' is not key=value", item);
    const std::string_view key = trim(item.substr(0, eq));
    const std::string_view value = trim(item.substr(eq + 1));
    if (key == "rate") o.rate = parse_number(key, value);
    else if (key == "burstiness") o.burstiness = parse_number(key, value);
    else if (key == "requests") o.requests = parse_int(key, value);
    else if (key == "duration") o.duration_seconds = parse_duration(value);
    else if (key == "prompt") parse_range(key, value, o.prompt_min, o.prompt_max);
    else if (key == "output") parse_range(key, value, o.output_min, o.output_max);
    else if (key == "seed") {
      uint64_t seed = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seed);
      if (value.empty() || ec != std::errc() || end != value.data() + value.size())
        fail<InvalidArgument>("synthetic spec: seed='{}' is not a non-negative whole number", value);
      o.seed = seed;
    } else {
      fail<InvalidArgument>("synthetic spec: unknown key '{}' (known: rate, burstiness, requests, duration, prompt, "
                            "output, seed)", key);
    }
  }
  validate(o);
  return o;
}

std::string to_spec(const SyntheticOptions& o) {
  // {} prints the shortest text that reads back as the same double, so the spec round-trips.
  std::string spec = fmt::format("synthetic:rate={},burstiness={}", o.rate, o.burstiness);
  if (o.requests > 0) spec += fmt::format(",requests={}", o.requests);
  if (o.duration_seconds > 0) spec += fmt::format(",duration={}", o.duration_seconds);
  spec += fmt::format(",prompt={},output={},seed={}", format_range(o.prompt_min, o.prompt_max),
                      format_range(o.output_min, o.output_max), o.seed);
  return spec;
}

}  // namespace morphserve::bench
