#include "bench/stats.h"

#include <cmath>
#include <map>
#include <string>

#include <gtest/gtest.h>

namespace morphserve::bench {
namespace {

// A completed request sent at `send` with tokens at the given times (the first is the first token).
RequestRecord completed(double send, std::vector<double> tokens) {
  RequestRecord r;
  r.send_seconds = r.scheduled_seconds = send;
  r.token_seconds = tokens;
  r.first_token_seconds = tokens.front();
  r.end_seconds = tokens.back();
  r.prompt_tokens = 100;
  r.output_tokens = static_cast<int64_t>(tokens.size());
  r.http_status = 200;
  return r;
}

RequestRecord failed(double send, double end) {
  RequestRecord r;
  r.send_seconds = send;
  r.end_seconds = end;
  r.http_status = 503;
  r.error = "HTTP 503";
  return r;
}

TEST(Stats, RecordTimings) {
  const RequestRecord r = completed(1.0, {1.5, 1.6, 1.8, 2.1});
  EXPECT_DOUBLE_EQ(*r.ttft(), 0.5);
  EXPECT_DOUBLE_EQ(*r.tpot(), 0.6 / 3);
  const auto gaps = r.inter_token_gaps();
  ASSERT_EQ(gaps.size(), 3u);
  EXPECT_NEAR(gaps[0], 0.1, 1e-12);
  EXPECT_NEAR(gaps[2], 0.3, 1e-12);
  EXPECT_DOUBLE_EQ(r.e2e(), 1.1);
  EXPECT_FALSE(completed(0, {0.5}).tpot());  // one token: no decode pace
  RequestRecord none;
  EXPECT_FALSE(none.ttft());
  EXPECT_TRUE(none.inter_token_gaps().empty());
}

TEST(Stats, PercentilesInterpolateLinearlyLikeNumpy) {
  // numpy.percentile([1..10], [50, 90, 95, 99]) = 5.5, 9.1, 9.55, 9.91
  const Percentiles p = percentiles({10, 9, 8, 7, 6, 5, 4, 3, 2, 1});
  EXPECT_EQ(p.count, 10u);
  EXPECT_DOUBLE_EQ(p.mean, 5.5);
  EXPECT_DOUBLE_EQ(p.p50, 5.5);
  EXPECT_NEAR(p.p90, 9.1, 1e-12);
  EXPECT_NEAR(p.p95, 9.55, 1e-12);
  EXPECT_NEAR(p.p99, 9.91, 1e-12);
  EXPECT_DOUBLE_EQ(p.max, 10);
  const Percentiles one = percentiles({3});
  EXPECT_EQ(one.p50, 3);
  EXPECT_EQ(one.p99, 3);
  const Percentiles none = percentiles({});
  EXPECT_EQ(none.count, 0u);
  EXPECT_TRUE(std::isnan(none.mean));
  EXPECT_TRUE(std::isnan(none.p95));
}

TEST(Stats, ViolationsAndGoodputFollowDistServe) {
  BenchRun run;
  run.records = {
      completed(0, {0.5, 0.6, 0.7}),  // TTFT .5, TPOT .1: meets both
      completed(1, {3.0, 3.1}),       // TTFT 2.0: misses TTFT
      completed(2, {2.2, 2.7, 3.2}),  // TPOT .5: misses TPOT
      completed(3, {3.1}),            // one token: judged on TTFT only, meets it
      failed(4, 4.5),                 // failed: a violation, not a latency sample
  };
  run.duration_seconds = 10;
  const Slo slo{1.0, 0.2};
  EXPECT_TRUE(meets_slo(run.records[0], slo));
  EXPECT_FALSE(meets_slo(run.records[1], slo));
  EXPECT_FALSE(meets_slo(run.records[2], slo));
  EXPECT_TRUE(meets_slo(run.records[3], slo));
  EXPECT_FALSE(meets_slo(run.records[4], slo));

  const BenchSummary s = summarize(run, slo);
  EXPECT_EQ(s.requests, 5u);
  EXPECT_EQ(s.completed, 4u);
  EXPECT_EQ(s.errors, 1u);
  EXPECT_DOUBLE_EQ(s.slo_violation_rate, 3.0 / 5.0);
  EXPECT_DOUBLE_EQ(s.goodput_rps, 2.0 / 10.0);
  EXPECT_DOUBLE_EQ(s.throughput_rps, 4.0 / 10.0);
  EXPECT_DOUBLE_EQ(s.output_tokens_per_second, (3 + 2 + 3 + 1) / 10.0);
  EXPECT_DOUBLE_EQ(s.input_tokens_per_second, 400 / 10.0);
  EXPECT_EQ(s.ttft.count, 4u);
  EXPECT_EQ(s.tpot.count, 3u);
  EXPECT_EQ(s.itl.count, 2u + 1 + 2);
  EXPECT_EQ(s.e2e.count, 4u);
  EXPECT_DOUBLE_EQ(s.ttft.max, 2.0);

  // Only the TTFT SLO set: the slow decode now counts as good.
  const BenchSummary ttft_only = summarize(run, Slo{1.0, 0});
  EXPECT_DOUBLE_EQ(ttft_only.slo_violation_rate, 2.0 / 5.0);
  // No SLO at all: only the failure violates.
  EXPECT_DOUBLE_EQ(summarize(run, Slo{}).slo_violation_rate, 1.0 / 5.0);
  EXPECT_DOUBLE_EQ(summarize(run, Slo{}).goodput_rps, 4.0 / 10.0);
}

TEST(Stats, ACompletedRequestWithoutTokensIsJudgedOnItsEnd) {
  RequestRecord empty;
  empty.send_seconds = 1;
  empty.end_seconds = 3;
  empty.http_status = 200;
  EXPECT_FALSE(meets_slo(empty, Slo{1.0, 0}));
  EXPECT_TRUE(meets_slo(empty, Slo{2.5, 0.01}));
  BenchRun run;
  run.records = {empty};
  const BenchSummary s = summarize(run, Slo{1.0, 0});
  EXPECT_EQ(s.ttft.count, 0u);  // no first token, no TTFT sample
  EXPECT_EQ(s.e2e.count, 1u);
  EXPECT_DOUBLE_EQ(s.slo_violation_rate, 1.0);
}

TEST(Stats, DurationFallsBackToFirstSendToLastEnd) {
  BenchRun run;
  run.records = {completed(2, {2.5, 3.0}), completed(4, {4.5, 6.0})};
  const BenchSummary s = summarize(run, {});
  EXPECT_DOUBLE_EQ(s.duration_seconds, 4.0);
  EXPECT_DOUBLE_EQ(s.throughput_rps, 0.5);
  const BenchSummary empty = summarize(BenchRun{}, {});
  EXPECT_EQ(empty.requests, 0u);
  EXPECT_TRUE(std::isnan(empty.slo_violation_rate));
  EXPECT_TRUE(std::isnan(empty.throughput_rps));
}

ServerSample sample(double seconds, std::map<std::string, double> values) {
  ServerSample s;
  s.seconds = seconds;
  s.values = std::move(values);
  return s;
}

TEST(Stats, ServerSeries) {
  BenchRun run;
  run.samples = {sample(0, {{"kv_blocks_total", 100}, {"layers_quantized_w8", 0}, {"layer_swaps_down", 0}}),
                 sample(1, {{"kv_blocks_total", 140}, {"layers_quantized_w8", 2}, {"layers_quantized_w4", 1}, {"layer_swaps_down", 3}}),
                 sample(2, {{"kv_blocks_total", 120}, {"layers_quantized_w8", 1}, {"layer_swaps_down", 4}}),
                 sample(3, {{"num_requests_running", 5}})};  // no layer series: not in the mean
  const BenchSummary s = summarize(run, {});
  EXPECT_DOUBLE_EQ(s.mean_layers_quantized, (0 + 3 + 1) / 3.0);
  EXPECT_DOUBLE_EQ(s.max_layers_quantized, 3);
  EXPECT_DOUBLE_EQ(s.max_kv_blocks_total, 140);
  EXPECT_DOUBLE_EQ(s.layer_swaps_down, 4);
  EXPECT_TRUE(std::isnan(s.layer_swaps_up));
  EXPECT_TRUE(std::isnan(s.mean_kv_cache_usage));
  EXPECT_TRUE(std::isnan(summarize(BenchRun{}, {}).mean_layers_quantized));
}

}  // namespace
}  // namespace morphserve::bench
