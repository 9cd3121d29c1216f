#include "bench/stats.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

namespace morphserve::bench {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The values of one server series over the run, in sample order; empty when never reported.
std::vector<double> series(const std::vector<ServerSample>& samples, const std::string& key) {
  std::vector<double> out;
  for (const ServerSample& s : samples) {
    const auto it = s.values.find(key);
    if (it != s.values.end() && std::isfinite(it->second)) out.push_back(it->second);
  }
  return out;
}

double mean(const std::vector<double>& v) {
  return v.empty() ? kNaN : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

double max_of(const std::vector<double>& v) { return v.empty() ? kNaN : *std::max_element(v.begin(), v.end()); }

// A counter's increase over the run; a server restart (counter going down) starts it again.
double counter_increase(const std::vector<double>& v) {
  if (v.empty()) return kNaN;
  double total = 0;
  for (size_t i = 1; i < v.size(); ++i) total += v[i] >= v[i - 1] ? v[i] - v[i - 1] : v[i];
  return total;
}

}  // namespace

double quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return kNaN;
  const double rank = std::clamp(q, 0.0, 1.0) * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - static_cast<double>(lo));
}

Percentiles percentiles(std::vector<double> values) {
  Percentiles p;
  p.count = values.size();
  std::sort(values.begin(), values.end());
  p.mean = mean(values);
  p.p50 = quantile(values, 0.50);
  p.p90 = quantile(values, 0.90);
  p.p95 = quantile(values, 0.95);
  p.p99 = quantile(values, 0.99);
  p.max = max_of(values);
  return p;
}

bool meets_slo(const RequestRecord& r, const Slo& slo) {
  if (!r.ok()) return false;
  if (slo.ttft > 0) {
    // A request that completed without any token answered (with nothing) at its end.
    const double ttft = r.ttft().value_or(r.e2e());
    if (ttft > slo.ttft) return false;
  }
  if (slo.tpot > 0) {
    // Under two tokens there is no decode pace to judge; DistServe counts such requests on TTFT.
    const auto tpot = r.tpot();
    if (tpot && *tpot > slo.tpot) return false;
  }
  return true;
}

BenchSummary summarize(const BenchRun& run, const Slo& slo) {
  BenchSummary s;
  s.requests = run.records.size();
  std::vector<double> ttft, tpot, itl, e2e;
  size_t good = 0;
  double output_tokens = 0, input_tokens = 0;
  double first_send = INFINITY, last_end = -INFINITY;
  for (const RequestRecord& r : run.records) {
    first_send = std::min(first_send, r.send_seconds);
    last_end = std::max(last_end, r.end_seconds);
    good += meets_slo(r, slo);
    if (!r.ok()) continue;
    ++s.completed;
    if (auto t = r.ttft()) ttft.push_back(*t);
    if (auto t = r.tpot()) tpot.push_back(*t);
    const auto gaps = r.inter_token_gaps();
    itl.insert(itl.end(), gaps.begin(), gaps.end());
    e2e.push_back(r.e2e());
    output_tokens += static_cast<double>(r.output_tokens);
    input_tokens += static_cast<double>(r.prompt_tokens);
  }
  s.errors = s.requests - s.completed;
  s.ttft = percentiles(std::move(ttft));
  s.tpot = percentiles(std::move(tpot));
  s.itl = percentiles(std::move(itl));
  s.e2e = percentiles(std::move(e2e));

  s.duration_seconds = run.duration_seconds > 0 ? run.duration_seconds
                       : s.requests > 0        ? std::max(0.0, last_end - first_send)
                                               : 0.0;
  // Rates over a zero-length run would be infinite; NaN says "not measurable" instead.
  const double per_second = s.duration_seconds > 0 ? 1.0 / s.duration_seconds : kNaN;
  s.slo_violation_rate = s.requests > 0 ? static_cast<double>(s.requests - good) / static_cast<double>(s.requests) : kNaN;
  s.goodput_rps = static_cast<double>(good) * per_second;
  s.throughput_rps = static_cast<double>(s.completed) * per_second;
  s.output_tokens_per_second = output_tokens * per_second;
  s.input_tokens_per_second = input_tokens * per_second;

  // A sample counts towards the layer mean when the server reported either precision in it.
  std::vector<double> layers;
  for (const ServerSample& sample : run.samples) {
    const auto w8 = sample.values.find("layers_quantized_w8");
    const auto w4 = sample.values.find("layers_quantized_w4");
    if (w8 == sample.values.end() && w4 == sample.values.end()) continue;
    layers.push_back((w8 != sample.values.end() ? w8->second : 0.0) + (w4 != sample.values.end() ? w4->second : 0.0));
  }
  s.mean_layers_quantized = mean(layers);
  s.max_layers_quantized = max_of(layers);
  s.max_kv_blocks_total = max_of(series(run.samples, "kv_blocks_total"));
  s.mean_kv_cache_usage = mean(series(run.samples, "kv_cache_usage_perc"));
  s.layer_swaps_down = counter_increase(series(run.samples, "layer_swaps_down"));
  s.layer_swaps_up = counter_increase(series(run.samples, "layer_swaps_up"));
  return s;
}

}  // namespace morphserve::bench
