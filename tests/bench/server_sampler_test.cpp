#include "bench/server_sampler.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>

#include <gtest/gtest.h>

#include "bench/fake_openai_server.h"
#include "bench/prometheus_text.h"

namespace morphserve::bench {
namespace {

using ::morphserve::testing::FakeOpenAiServer;

// GET /metrics of `morphserve serve` (the shape src/server/prometheus.cpp writes), trimmed of
// some histogram buckets.
const char* const kMorphserveMetrics = R"(# HELP morphserve:num_requests_running Number of requests in model execution batches.
# TYPE morphserve:num_requests_running gauge
morphserve:num_requests_running{model_name="dummy:tiny"} 3.0
# HELP morphserve:num_requests_waiting Number of requests waiting to be processed.
# TYPE morphserve:num_requests_waiting gauge
morphserve:num_requests_waiting{model_name="dummy:tiny"} 5.0
# HELP morphserve:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE morphserve:kv_cache_usage_perc gauge
morphserve:kv_cache_usage_perc{model_name="dummy:tiny"} 0.4375
# HELP morphserve:kv_blocks_total KV-cache blocks in the pool.
# TYPE morphserve:kv_blocks_total gauge
morphserve:kv_blocks_total{model_name="dummy:tiny"} 64.0
# HELP morphserve:kv_blocks_used KV-cache blocks held by requests.
# TYPE morphserve:kv_blocks_used gauge
morphserve:kv_blocks_used{model_name="dummy:tiny"} 28.0
# HELP morphserve:num_preemptions_total Cumulative number of preemptions from the engine.
# TYPE morphserve:num_preemptions_total counter
morphserve:num_preemptions_total{model_name="dummy:tiny"} 0.0
# HELP morphserve:request_success_total Count of successfully processed requests.
# TYPE morphserve:request_success_total counter
morphserve:request_success_total{model_name="dummy:tiny",finished_reason="stop"} 0.0
morphserve:request_success_total{model_name="dummy:tiny",finished_reason="length"} 12.0
# HELP morphserve:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE morphserve:time_to_first_token_seconds histogram
morphserve:time_to_first_token_seconds_bucket{model_name="dummy:tiny",le="0.001"} 0.0
morphserve:time_to_first_token_seconds_bucket{model_name="dummy:tiny",le="+Inf"} 12.0
morphserve:time_to_first_token_seconds_sum{model_name="dummy:tiny"} 0.123
morphserve:time_to_first_token_seconds_count{model_name="dummy:tiny"} 12.0
# HELP morphserve:layers_quantized Decoder layers running on a quantized replica, by precision.
# TYPE morphserve:layers_quantized gauge
morphserve:layers_quantized{model_name="dummy:tiny",precision="w8"} 1.0
morphserve:layers_quantized{model_name="dummy:tiny",precision="w4"} 2.0
# HELP morphserve:layer_swaps_total Finished layer swaps: down to a quantized replica, up towards full precision.
# TYPE morphserve:layer_swaps_total counter
morphserve:layer_swaps_total{model_name="dummy:tiny",direction="down"} 4.0
morphserve:layer_swaps_total{model_name="dummy:tiny",direction="up"} 1.0
# HELP morphserve:layer_swaps_in_flight Layer swaps started and not finished.
# TYPE morphserve:layer_swaps_in_flight gauge
morphserve:layer_swaps_in_flight{model_name="dummy:tiny"} 0.0
morphserve:swap_seconds_bucket{model_name="dummy:tiny",le="+Inf"} 5.0
)";

// vLLM (v1 engine) style: other label orders, engine labels, two engines, NaN, timestamps.
const char* const kVllmMetrics = R"(# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 7.0
vllm:num_requests_running{model_name="meta-llama/Llama-3.1-8B-Instruct",engine="1"} 2.0
vllm:num_requests_waiting{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 4.0 1700000000000
vllm:kv_cache_usage_perc{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.5
vllm:kv_cache_usage_perc{engine="1",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.25
vllm:num_preemptions_total{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} NaN
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="meta-llama/Llama-3.1-8B-Instruct"} 3.0
python_gc_objects_collected_total{generation="0"} 1234.0
process_cpu_seconds_total 5.6
)";

TEST(PrometheusText, ParsesNamesLabelsAndSpecialValues) {
  const auto samples = parse_prometheus_text(
      "# HELP x y\n\n a_b:c{k=\"v\\\"q\\\\\",z = \"1\" ,} +Inf\nplain 2 123\nbad{k=\"v\" 1\nnan_one NaN\nneg -Inf\r\n"
      "no_value\nwrong 1.2.3\n");
  ASSERT_EQ(samples.size(), 4u);
  EXPECT_EQ(samples[0].name, "a_b:c");
  EXPECT_EQ(samples[0].labels.at("k"), "v\"q\\");
  EXPECT_EQ(samples[0].labels.at("z"), "1");
  EXPECT_TRUE(std::isinf(samples[0].value));
  EXPECT_EQ(samples[1].name, "plain");
  EXPECT_EQ(samples[1].value, 2.0);  // the timestamp is not the value
  EXPECT_TRUE(std::isnan(samples[2].value));
  EXPECT_EQ(samples[3].value, -INFINITY);
}

TEST(ServerSampler, ReadsMorphservesMetrics) {
  const auto v = server_values_from_metrics(kMorphserveMetrics);
  EXPECT_EQ(v.at("num_requests_running"), 3.0);
  EXPECT_EQ(v.at("num_requests_waiting"), 5.0);
  EXPECT_DOUBLE_EQ(v.at("kv_cache_usage_perc"), 0.4375);
  EXPECT_EQ(v.at("kv_blocks_total"), 64.0);
  EXPECT_EQ(v.at("kv_blocks_used"), 28.0);
  EXPECT_EQ(v.at("layers_quantized_w8"), 1.0);
  EXPECT_EQ(v.at("layers_quantized_w4"), 2.0);
  EXPECT_EQ(v.at("layer_swaps_down"), 4.0);
  EXPECT_EQ(v.at("layer_swaps_up"), 1.0);
  EXPECT_EQ(v.size(), 9u) << "histograms and other counters are not plotted";
}

TEST(ServerSampler, ReadsVllmMetricsAcrossEngines) {
  const auto v = server_values_from_metrics(kVllmMetrics);
  EXPECT_EQ(v.at("num_requests_running"), 9.0);   // summed over engines
  EXPECT_EQ(v.at("num_requests_waiting"), 4.0);
  EXPECT_DOUBLE_EQ(v.at("kv_cache_usage_perc"), 0.375);  // averaged
  EXPECT_EQ(v.count("kv_blocks_total"), 0u);
  EXPECT_EQ(v.count("layers_quantized_w4"), 0u);
}

TEST(ServerSampler, ReadsOlderVllmAndLlamaServerNames) {
  EXPECT_EQ(server_values_from_metrics("vllm:gpu_cache_usage_perc{model_name=\"m\"} 0.75\n").at("kv_cache_usage_perc"), 0.75);
  const auto v = server_values_from_metrics(
      "# HELP llamacpp:requests_processing Number of requests processing.\n"
      "llamacpp:requests_processing 2\nllamacpp:requests_deferred 1\nllamacpp:kv_cache_usage_ratio 0.5\n"
      "llamacpp:prompt_tokens_total 100\n");
  EXPECT_EQ(v.at("num_requests_running"), 2.0);
  EXPECT_EQ(v.at("num_requests_waiting"), 1.0);
  EXPECT_EQ(v.at("kv_cache_usage_perc"), 0.5);
  EXPECT_EQ(v.size(), 3u);
}

TEST(ServerSampler, IgnoresGarbage) {
  EXPECT_TRUE(server_values_from_metrics("").empty());
  EXPECT_TRUE(server_values_from_metrics("<html>not found</html>\n{\"error\": 1}\n").empty());
  EXPECT_TRUE(server_values_from_metrics("morphserve:num_requests_running{model_name=\"m\"} NaN\n").empty());
}

TEST(ServerSampler, CountsQuantizedLayersFromMorphStatus) {
  const auto dynamic = nlohmann::json::parse(R"({"mode":"dynamic","layers":[
      {"layer":0,"precision":"q4_0","full_precision":"f16"},
      {"layer":1,"precision":"q8_0","full_precision":"f16"},
      {"layer":2,"precision":"f16","full_precision":"f16"}],"swaps":{"down":3,"up":1,"in_flight":1}})");
  const auto v = server_values_from_morph(dynamic);
  EXPECT_EQ(v.at("morph_layers_quantized"), 2.0);
  EXPECT_EQ(v.at("morph_swaps_in_flight"), 1.0);
  // Fixed precision (--morph off / static-*) gives no full precision: quantized types count.
  const auto fixed = nlohmann::json::parse(R"({"mode":"static-w4","layers":[
      {"layer":0,"precision":"q4_0","phase":"fixed"},{"layer":1,"precision":"f32","phase":"fixed"}]})");
  EXPECT_EQ(server_values_from_morph(fixed).at("morph_layers_quantized"), 1.0);
  EXPECT_TRUE(server_values_from_morph(nlohmann::json::parse(R"({"mode":"off"})")).empty());
  EXPECT_TRUE(server_values_from_morph(nlohmann::json::array()).empty());
}

TEST(ServerSampler, PrecisionMapOfMorphStatus) {
  const auto layers = [](const std::string& list) {
    return nlohmann::json::parse(R"({"mode":"dynamic","layers":[)" + list + "]}");
  };
  EXPECT_EQ(precision_map_from_morph(layers(R"({"layer":0,"precision":"f16","full_precision":"f16"},
                                               {"layer":1,"precision":"f16","full_precision":"f16"})")),
            "all:f16");
  EXPECT_EQ(precision_map_from_morph(layers(R"({"layer":0,"precision":"q4_0","full_precision":"f32"},
                                               {"layer":1,"precision":"q4_0","full_precision":"f32"},
                                               {"layer":2,"precision":"f32","full_precision":"f32"},
                                               {"layer":3,"precision":"q8_0","full_precision":"f32"})")),
            "0-1:q4_0,3:q8_0");
  // Fixed precision (no full_precision field): quantized types are listed.
  EXPECT_EQ(precision_map_from_morph(layers(R"({"layer":0,"precision":"q4_0"},{"layer":1,"precision":"q4_0"})")),
            "0-1:q4_0");
  EXPECT_EQ(precision_map_from_morph(layers(R"({"layer":0,"precision":"f32"},{"layer":1,"precision":"f16"})")),
            "0:f32,1:f16");
  EXPECT_EQ(precision_map_from_morph(layers("")), "");
  EXPECT_EQ(precision_map_from_morph(nlohmann::json::parse(R"({"mode":"off"})")), "");
}

TEST(ServerSampler, PollsTheServerUntilStopped) {
  FakeOpenAiServer server;
  ServerSampler sampler(parse_server_url(server.url()), "", 0.05, std::chrono::steady_clock::now());
  sampler.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const std::vector<ServerSample> samples = sampler.stop();
  ASSERT_GE(samples.size(), 3u);
  EXPECT_EQ(samples.front().values.at("num_requests_running"), 2.0);
  EXPECT_EQ(samples.front().values.at("morph_layers_quantized"), 1.0);
  EXPECT_EQ(samples.front().precision_map, "0:q4_0");
  EXPECT_GE(samples.back().seconds, samples.front().seconds);
}

TEST(ServerSampler, AServerWithoutMorphGivesFewerKeys) {
  FakeOpenAiServer server({.morph = false});
  ServerSampler sampler(parse_server_url(server.url()), "", 1.0, std::chrono::steady_clock::now());
  const ServerSample first = sampler.sample_now();
  EXPECT_EQ(first.values.count("morph_layers_quantized"), 0u);
  EXPECT_EQ(first.values.at("num_requests_running"), 2.0);
}

TEST(ServerSampler, AnUnreachableServerGivesNoSamples) {
  const int port = testing::closed_port();
  ServerSampler sampler(parse_server_url("127.0.0.1:" + std::to_string(port)), "", 0.05, std::chrono::steady_clock::now());
  sampler.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(sampler.stop().empty());
}

}  // namespace
}  // namespace morphserve::bench
