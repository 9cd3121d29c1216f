// /metrics text: exposition format 0.0.4, vLLM's names under morphserve:, a model_name label.
#include "server/prometheus.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include <fmt/format.h>

namespace morphserve::server {
namespace {

using ::testing::HasSubstr;

TEST(Prometheus, Numbers) {
  EXPECT_EQ(prometheus_number(0), "0.0");
  EXPECT_EQ(prometheus_number(1), "1.0");
  EXPECT_EQ(prometheus_number(42), "42.0");
  EXPECT_EQ(prometheus_number(0.001), "0.001");
  EXPECT_EQ(prometheus_number(2.5), "2.5");
  EXPECT_EQ(prometheus_number(1.0 / 0.0), "+Inf");
  EXPECT_EQ(prometheus_number(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(prometheus_number(std::nan("")), "NaN");
}

TEST(Prometheus, LabelEscaping) { EXPECT_EQ(prometheus_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd"); }

TEST(Prometheus, RendersGaugesCountersAndHistograms) {
  EngineMetrics metrics;
  metrics.prompt_tokens = 12;
  metrics.generation_tokens = 34;
  metrics.num_preemptions = 2;
  metrics.request_success[0] = 3;  // stop
  metrics.request_success[1] = 1;  // length
  metrics.request_success[2] = 3;  // cancelled
  metrics.request_success[4] = 2;  // queue timeout: also an abort
  metrics.time_to_first_token_seconds.observe(0.003);
  metrics.time_to_first_token_seconds.observe(0.5);
  EngineSnapshot snapshot;
  snapshot.num_running = 4;
  snapshot.num_waiting = 7;
  snapshot.kv_blocks_total = 200;
  snapshot.kv_blocks_used = 50;
  const std::string text = render_prometheus("dummy:tiny", snapshot, &metrics);

  EXPECT_THAT(text, HasSubstr("# HELP morphserve:num_requests_running "));
  EXPECT_THAT(text, HasSubstr("# TYPE morphserve:num_requests_running gauge\n"
                              "morphserve:num_requests_running{model_name=\"dummy:tiny\"} 4.0\n"));
  EXPECT_THAT(text, HasSubstr("morphserve:num_requests_waiting{model_name=\"dummy:tiny\"} 7.0\n"));
  EXPECT_THAT(text, HasSubstr("morphserve:kv_cache_usage_perc{model_name=\"dummy:tiny\"} 0.25\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE morphserve:kv_blocks_total gauge\nmorphserve:kv_blocks_total{model_name=\"dummy:tiny\"} 200.0\n"));
  EXPECT_THAT(text, HasSubstr("morphserve:kv_blocks_used{model_name=\"dummy:tiny\"} 50.0\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE morphserve:num_preemptions_total counter\n"
                              "morphserve:num_preemptions_total{model_name=\"dummy:tiny\"} 2.0\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE morphserve:prompt_tokens_total counter\n"
                              "morphserve:prompt_tokens_total{model_name=\"dummy:tiny\"} 12.0\n"));
  EXPECT_THAT(text, HasSubstr("morphserve:generation_tokens_total{model_name=\"dummy:tiny\"} 34.0\n"));
  EXPECT_THAT(text, HasSubstr("morphserve:request_success_total{model_name=\"dummy:tiny\",finished_reason=\"stop\"} 3.0\n"));
  EXPECT_THAT(text, HasSubstr("morphserve:request_success_total{model_name=\"dummy:tiny\",finished_reason=\"length\"} 1.0\n"));
  EXPECT_THAT(text, HasSubstr("morphserve:request_success_total{model_name=\"dummy:tiny\",finished_reason=\"abort\"} 5.0\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE morphserve:num_queue_timeouts_total counter\n"
                              "morphserve:num_queue_timeouts_total{model_name=\"dummy:tiny\"} 2.0\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE morphserve:time_to_first_token_seconds histogram\n"));
  EXPECT_THAT(text, HasSubstr("morphserve:time_to_first_token_seconds_bucket{model_name=\"dummy:tiny\",le=\"0.001\"} 0.0\n"));
  EXPECT_THAT(text, HasSubstr("morphserve:time_to_first_token_seconds_bucket{model_name=\"dummy:tiny\",le=\"0.005\"} 1.0\n"));
  EXPECT_THAT(text, HasSubstr("morphserve:time_to_first_token_seconds_bucket{model_name=\"dummy:tiny\",le=\"0.5\"} 2.0\n"));
  EXPECT_THAT(text, HasSubstr("morphserve:time_to_first_token_seconds_bucket{model_name=\"dummy:tiny\",le=\"+Inf\"} 2.0\n"));
  EXPECT_THAT(text, HasSubstr("morphserve:time_to_first_token_seconds_sum{model_name=\"dummy:tiny\"} 0.503\n"));
  EXPECT_THAT(text, HasSubstr("morphserve:time_to_first_token_seconds_count{model_name=\"dummy:tiny\"} 2.0\n"));
  for (const char* h : {"inter_token_latency_seconds", "e2e_request_latency_seconds", "request_queue_time_seconds"}) {
    EXPECT_THAT(text, HasSubstr(fmt::format("# TYPE morphserve:{} histogram\n", h)));
    EXPECT_THAT(text, HasSubstr(fmt::format("morphserve:{}_count{{model_name=\"dummy:tiny\"}} 0.0\n", h)));
  }
}

TEST(Prometheus, MorphSeries) {
  MorphSummary morph;
  morph.n_layers = 8;
  morph.layers_w8 = 2;
  morph.layers_w4 = 1;
  morph.swaps_down = 5;
  morph.swaps_up = 2;
  morph.swaps_in_flight = 1;
  morph.swaps_failed = 3;
  morph.suspended = true;
  morph.precision_degradation = 0.375;
  morph.swap_seconds.upper_bounds = swap_seconds_buckets();
  morph.swap_seconds.cumulative_counts.assign(morph.swap_seconds.upper_bounds.size(), 7);
  morph.swap_seconds.count = 7;
  morph.swap_seconds.sum = 1.25;
  const std::string text = render_prometheus("dummy:tiny", EngineSnapshot{}, nullptr, &morph);
  EXPECT_THAT(text, HasSubstr("morphserve:layers_quantized{model_name=\"dummy:tiny\",precision=\"w8\"} 2.0\n"));
  EXPECT_THAT(text, HasSubstr("morphserve:layers_quantized{model_name=\"dummy:tiny\",precision=\"w4\"} 1.0\n"));
  EXPECT_THAT(text, HasSubstr("morphserve:layer_swaps_total{model_name=\"dummy:tiny\",direction=\"down\"} 5.0\n"));
  EXPECT_THAT(text, HasSubstr("morphserve:layer_swaps_total{model_name=\"dummy:tiny\",direction=\"up\"} 2.0\n"));
  EXPECT_THAT(text, HasSubstr("morphserve:layer_swaps_in_flight{model_name=\"dummy:tiny\"} 1.0\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE morphserve:layer_swaps_failed_total counter\n"
                              "morphserve:layer_swaps_failed_total{model_name=\"dummy:tiny\"} 3.0\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE morphserve:morph_suspended gauge\n"
                              "morphserve:morph_suspended{model_name=\"dummy:tiny\"} 1.0\n"));
  EXPECT_THAT(text, HasSubstr("morphserve:swap_seconds_count{model_name=\"dummy:tiny\"} 7.0\n"));
  EXPECT_THAT(text, HasSubstr("morphserve:swap_seconds_sum{model_name=\"dummy:tiny\"} 1.25\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE morphserve:precision_degradation gauge\n"
                              "morphserve:precision_degradation{model_name=\"dummy:tiny\"} 0.375\n"));
}

TEST(Prometheus, ParsesMetricsCompat) {
  EXPECT_EQ(parse_metrics_compat("none"), MetricsCompat::None);
  EXPECT_EQ(parse_metrics_compat("vllm"), MetricsCompat::Vllm);
  EXPECT_EQ(parse_metrics_compat("VLLM"), std::nullopt);
  EXPECT_EQ(parse_metrics_compat("sglang"), std::nullopt);
}

// The series the Endpoint Picker reads by default, under vLLM's names and labels.
TEST(Prometheus, VllmCompatSeriesUseVllmNames) {
  EngineSnapshot snapshot;
  snapshot.num_running = 3;
  snapshot.num_waiting = 9;
  snapshot.kv_blocks_total = 400;
  snapshot.kv_blocks_used = 100;
  snapshot.block_size = 16;
  PrometheusOptions options;
  options.compat = MetricsCompat::Vllm;
  options.now_unix_seconds = 1765000000.5;
  const std::string text = render_prometheus("m", snapshot, nullptr, nullptr, options);
  EXPECT_THAT(text, HasSubstr("# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{model_name=\"m\"} 9.0\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{model_name=\"m\"} 3.0\n"));
  EXPECT_THAT(text, HasSubstr("vllm:kv_cache_usage_perc{model_name=\"m\"} 0.25\n"));
  EXPECT_THAT(text, HasSubstr("vllm:gpu_cache_usage_perc{model_name=\"m\"} 0.25\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE vllm:lora_requests_info gauge\n"
                              "vllm:lora_requests_info{model_name=\"m\",max_lora=\"0\",running_lora_adapters=\"\","
                              "waiting_lora_adapters=\"\"} 1765000000.5\n"));
  EXPECT_THAT(text, HasSubstr("vllm:cache_config_info{model_name=\"m\",block_size=\"16\",num_gpu_blocks=\"400\"} 1.0\n"));
  // morphserve's own series stay as they are.
  EXPECT_THAT(text, HasSubstr("morphserve:num_requests_waiting{model_name=\"m\"} 9.0\n"));

  const std::string plain = render_prometheus("m", snapshot, nullptr, nullptr);
  EXPECT_THAT(plain, ::testing::Not(HasSubstr("vllm:")));
}

// Every line is a comment or "name{labels} value", and every series is announced by # TYPE.
TEST(Prometheus, WellFormedLines) {
  PrometheusOptions vllm;
  vllm.compat = MetricsCompat::Vllm;
  const std::string text = render_prometheus("m\"x", EngineSnapshot{}, nullptr, nullptr, vllm);
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  std::istringstream lines(text);
  std::string line;
  std::string typed;
  while (std::getline(lines, line)) {
    if (line.rfind("# TYPE ", 0) == 0) {
      typed = line.substr(7, line.find(' ', 7) - 7);
      continue;
    }
    if (line.rfind("# HELP ", 0) == 0) continue;
    EXPECT_EQ(line.rfind(typed, 0), 0u) << line << " is not under # TYPE " << typed;
    EXPECT_THAT(line, HasSubstr("{model_name=\"m\\\"x\""));
    const std::string value = line.substr(line.rfind(' ') + 1);
    // Everything reads zero on an empty server but the info series, whose value is not a count.
    EXPECT_EQ(value, typed == "vllm:cache_config_info" ? "1.0" : "0.0") << line;
  }
}

}  // namespace
}  // namespace morphserve::server
