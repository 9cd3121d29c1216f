#pragma once
// What a run amounts to: latency percentiles, SLO violations and goodput (DistServe: requests
// that meet every SLO, per second), throughput, and what the server's morphing did meanwhile.
#include <cstddef>
#include <vector>

#include "bench/request_record.h"

namespace morphserve::bench {

// Percentiles by linear interpolation between closest ranks (numpy's default, which vLLM's
// benchmark_serving reports), so numbers compare with theirs. All NaN when count is 0.
struct Percentiles {
  size_t count = 0;
  double mean = 0, p50 = 0, p90 = 0, p95 = 0, p99 = 0, max = 0;
};

Percentiles percentiles(std::vector<double> values);
// The q-quantile (q in [0, 1]) of sorted values, interpolated; NaN when empty.
double quantile(const std::vector<double>& sorted, double q);

struct Slo {
  double ttft = 0;  // seconds; 0 = not set
  double tpot = 0;  // seconds; 0 = not set
};

struct BenchSummary {
  size_t requests = 0;   // records in the run
  size_t completed = 0;  // RequestRecord::ok()
  size_t errors = 0;     // requests - completed
  // Latencies in seconds, over completed requests (a failed request's partial timings say
  // nothing about service); a completed request without a first token has no TTFT sample.
  Percentiles ttft, tpot, itl, e2e;
  double slo_violation_rate = 0;  // share of requests that failed or missed any set SLO; NaN for no requests
  double goodput_rps = 0;         // requests meeting every SLO per second of run
  double throughput_rps = 0;      // completed requests per second
  double output_tokens_per_second = 0, input_tokens_per_second = 0;  // of completed requests
  double duration_seconds = 0;    // the run's, or first send to last end when the run has none
  // From the server samples; NaN when the server never reported the series.
  double mean_layers_quantized = 0;  // mean over samples of layers_quantized_w8 + _w4
  double max_layers_quantized = 0;
  double max_kv_blocks_total = 0;
  double mean_kv_cache_usage = 0;    // mean of kv_cache_usage_perc (0..1, as vLLM reports it)
  double layer_swaps_down = 0, layer_swaps_up = 0;  // counter increase over the run
};

// Whether one record met every set SLO (a failed request never does).
bool meets_slo(const RequestRecord& record, const Slo& slo);

BenchSummary summarize(const BenchRun& run, const Slo& slo);

}  // namespace morphserve::bench
