#include "engine/engine_metrics.h"

#include <algorithm>

namespace morphserve {

Histogram::Histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {
  std::sort(bounds_.begin(), bounds_.end());
}

void Histogram::observe(double value) {
  const auto bucket = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  std::lock_guard lock(mutex_);
  ++counts_[bucket];
  sum_ += value;
  ++count_;
}

Histogram::Snapshot Histogram::snapshot() const {
  std::lock_guard lock(mutex_);
  Snapshot s{bounds_, {}, sum_, count_};
  uint64_t running = 0;
  for (uint64_t c : counts_) s.cumulative_counts.push_back(running += c);
  return s;
}

namespace {
// vLLM's bucket choices, so dashboards built for it read ours the same way.
std::vector<double> ttft_buckets() {
  return {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0};
}
std::vector<double> itl_buckets() {
  return {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0};
}
std::vector<double> request_buckets() {
  return {0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0};
}
}  // namespace

EngineMetrics::EngineMetrics()
    : time_to_first_token_seconds(ttft_buckets()),
      inter_token_latency_seconds(itl_buckets()),
      e2e_request_latency_seconds(request_buckets()),
      request_queue_time_seconds(request_buckets()) {}

}  // namespace morphserve
