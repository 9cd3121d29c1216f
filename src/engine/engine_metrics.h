#pragma once
// Counters and latency histograms the engine records and /metrics exposes (vLLM's names under
// the morphserve: prefix). Written by the engine thread, read by HTTP threads: every member is
// safe to read concurrently.
#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace morphserve {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);

  struct Snapshot {
    std::vector<double> upper_bounds;
    std::vector<uint64_t> cumulative_counts;  // one per bound, then +Inf
    double sum = 0.0;
    uint64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  mutable std::mutex mutex_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative), last one is +Inf
  double sum_ = 0.0;
  uint64_t count_ = 0;
};

struct EngineMetrics {
  EngineMetrics();

  std::atomic<uint64_t> prompt_tokens{0};
  std::atomic<uint64_t> generation_tokens{0};
  std::atomic<uint64_t> num_preemptions{0};
  // Finished requests by reason: stop, length, cancelled, error, queue timeout (FinishReason order).
  std::array<std::atomic<uint64_t>, 5> request_success{};

  Histogram time_to_first_token_seconds;
  Histogram inter_token_latency_seconds;
  Histogram e2e_request_latency_seconds;
  Histogram request_queue_time_seconds;
};

}  // namespace morphserve
