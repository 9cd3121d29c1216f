#pragma once
// Generated workloads: Poisson or Gamma arrivals (vLLM benchmark_serving's request-rate and
// burstiness model) with fixed or uniformly drawn prompt and output lengths, deterministic for
// a seed.
//
// Spec strings, as `bench --trace` accepts them:
//   synthetic:rate=4,burstiness=0.5,requests=200,prompt=128-512,output=64,seed=1
// Keys (all optional except one of requests / duration):
//   rate        requests per second (default 1); "inf" sends every request at t = 0
//   burstiness  Gamma shape (default 1 = Poisson); below 1 is burstier, above 1 more regular
//   requests    how many requests
//   duration    how long the arrivals span ("60", "90s", "5m"); with requests, whichever ends first
//   prompt      prompt tokens: "N" or "MIN-MAX" (uniform, inclusive; default 128)
//   output      output tokens: "N" or "MIN-MAX" (default 128)
//   seed        the random seed (default 0)
#include <cstdint>
#include <string>
#include <string_view>

#include "bench/workload.h"

namespace morphserve::bench {

struct SyntheticOptions {
  double rate = 1.0;        // requests per second; +infinity: all at once
  double burstiness = 1.0;  // Gamma shape k; inter-arrival ~ Gamma(k, 1/(rate·k)), mean 1/rate
  int64_t requests = 0;     // 0: bounded by duration only
  double duration_seconds = 0.0;  // 0: bounded by requests only
  int64_t prompt_min = 128, prompt_max = 128;
  int64_t output_min = 128, output_max = 128;
  uint64_t seed = 0;
};

// Throws InvalidArgument for options that cannot make a finite, sensible workload.
Workload generate_synthetic(const SyntheticOptions& options);

// True when `text` starts with "synthetic:" (so a --trace flag can take either a file or a spec).
bool is_synthetic_spec(std::string_view text);
// Parses the spec above; InvalidArgument naming the key for unknown keys or bad values.
SyntheticOptions parse_synthetic_spec(std::string_view spec);
// The canonical spec of `options` (parse_synthetic_spec(to_spec(o)) == o); the workload's source.
std::string to_spec(const SyntheticOptions& options);

}  // namespace morphserve::bench
