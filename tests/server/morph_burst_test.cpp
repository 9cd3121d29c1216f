// The whole system on a burst: a server with a dummy model and a budget whose KV holds a fraction
// of the load. Under the burst it quantizes layers and grows its KV capacity, serves every
// request in full, and after the burst returns to full precision with the base capacity; /morph,
// /metrics and --morph-log tell the story.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "morph_queries.h"
#include "server_process.h"

namespace morphserve::testing {
namespace {

using nlohmann::json;

TEST(MorphBurst, QuantizesUnderLoadServesEverythingAndRestoresAfterwards) {
  const std::filesystem::path log = std::filesystem::path(::testing::TempDir()) / "morph_burst.jsonl";
  std::filesystem::remove(log);
  ServerProcess server({"-m", "dummy:tiny", "--memory-budget", "3MiB", "--max-model-len", "256",
                        "--max-num-batched-tokens", "64", "--mode", "performance", "--morph-hold", "0.5s",
                        "--morph-log", log.string()});
  ASSERT_TRUE(server.wait_ready());
  const json before = get_morph(server);
  ASSERT_EQ(before["mode"], "dynamic") << before.dump();
  const int64_t base_blocks = before["kv"]["blocks_total"];
  EXPECT_EQ(quantized_layers(before), 0);

  std::atomic<bool> done{false};
  int peak_quantized = 0;
  double peak_degradation = 0;
  bool degradation_matches_layers = true;
  int64_t peak_blocks = base_blocks;
  bool budget_kept = true;
  std::thread monitor([&] {
    while (!done.load()) {
      const json m = get_morph(server);
      if (!m.is_null()) {
        peak_quantized = std::max(peak_quantized, quantized_layers(m));
        // dummy:tiny's layers are one size, so the byte share is the layer share.
        const double degradation = m["precision_degradation"].get<double>();
        peak_degradation = std::max(peak_degradation, degradation);
        degradation_matches_layers &=
            std::abs(degradation - static_cast<double>(quantized_layers(m)) / static_cast<double>(m["layers"].size())) < 1e-9;
        peak_blocks = std::max<int64_t>(peak_blocks, m["kv"]["blocks_total"].get<int64_t>());
        budget_kept &= m["budget"]["used"].get<size_t>() <= m["budget"]["bytes"].get<size_t>();
      }
      std::this_thread::sleep_for(10ms);
    }
  });
  constexpr int kClients = 24;
  std::vector<int> status(kClients, 0);
  std::vector<int64_t> completion_tokens(kClients, 0);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      auto c = server.client(120s);
      const Reply r = post_json(*c, "/v1/completions",
                                json{{"prompt", "Once upon a time " + std::to_string(i)},
                                     {"max_tokens", 150},
                                     {"ignore_eos", true},
                                     {"stream", i % 2 == 0}});
      status[static_cast<size_t>(i)] = r.status;
      if (r.status == 200 && i % 2 == 1) completion_tokens[static_cast<size_t>(i)] = r.json()["usage"]["completion_tokens"];
      if (r.status == 200 && i % 2 == 0) completion_tokens[static_cast<size_t>(i)] = r.body.find("[DONE]") != std::string::npos ? 150 : 0;
    });
  }
  for (auto& t : clients) t.join();
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(status[static_cast<size_t>(i)], 200) << "client " << i;
    EXPECT_EQ(completion_tokens[static_cast<size_t>(i)], 150) << "client " << i;
  }

  // After the burst: back to full precision and the base capacity, nothing held.
  json after;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    after = get_morph(server);
    if (!after.is_null() && quantized_layers(after) == 0 && after["swaps"]["in_flight"] == 0 &&
        after["kv"]["blocks_total"] == base_blocks) {
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  done = true;
  monitor.join();
  EXPECT_GT(peak_quantized, 0) << "no layer was quantized under the burst";
  EXPECT_GT(peak_degradation, 0.0);
  EXPECT_LE(peak_degradation, 1.0);
  EXPECT_TRUE(degradation_matches_layers);
  EXPECT_EQ(after["precision_degradation"], 0.0);
  EXPECT_GT(peak_blocks, base_blocks) << "the KV pool never grew";
  EXPECT_TRUE(budget_kept);
  EXPECT_EQ(quantized_layers(after), 0) << after.dump(2);
  EXPECT_EQ(after["kv"]["blocks_total"], base_blocks);
  EXPECT_EQ(after["kv"]["blocks_used"], 0);
  EXPECT_LE(after["budget"]["peak"].get<size_t>(), after["budget"]["bytes"].get<size_t>());
  EXPECT_GT(after["swaps"]["down"].get<int>(), 0);
  EXPECT_EQ(after["swaps"]["down"], after["swaps"]["up"]);
  EXPECT_TRUE(after["controller"]["last_action"].contains("reason")) << after.dump(2);

  std::string metrics;
  ASSERT_TRUE(wait_for_metrics(server, [](const std::string&) { return true; }, 5s, &metrics));
  EXPECT_EQ(metric_value(metrics, "morphserve:layers_quantized{model_name=\"dummy:tiny\",precision=\"w4\"}"), 0.0);
  const double down = metric_value(metrics, "morphserve:layer_swaps_total{model_name=\"dummy:tiny\",direction=\"down\"}");
  EXPECT_EQ(down, after["swaps"]["down"].get<double>());
  EXPECT_EQ(metric_value(metrics, "morphserve:swap_seconds_count"), 2 * down);
  EXPECT_EQ(metric_value(metrics, "morphserve:kv_blocks_total"), static_cast<double>(base_blocks));
  EXPECT_EQ(metric_value(metrics, "morphserve:precision_degradation"), 0.0);

  EXPECT_EQ(server.terminate(), 0) << server.stderr_text();
  // One JSON line per action, with the signals that caused it.
  std::ifstream in(log);
  std::set<std::string> events;
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    const json entry = json::parse(line);
    events.insert(entry["event"].get<std::string>());
    EXPECT_TRUE(entry.contains("time") && entry.contains("raw")) << line;
    if (entry["event"] == "swap_down_start") {
      EXPECT_FALSE(entry["reason"].get<std::string>().empty());
    }
    ++lines;
  }
  EXPECT_TRUE(events.count("swap_down_start") && events.count("swap_down_done") && events.count("restore_start") &&
              events.count("restore_done"))
      << lines << " lines";
}

TEST(MorphBurst, StaticAndOffModesReportFixedPrecisions) {
  for (const auto& [mode, precision] : {std::pair{"static-w4", "q4_0"}, std::pair{"static-w8", "q8_0"}, std::pair{"off", "f16"}}) {
    ServerProcess server({"-m", "dummy:tiny", "--morph", mode, "--metrics-compat", "vllm"});
    ASSERT_TRUE(server.wait_ready());
    const json m = get_morph(server);
    EXPECT_EQ(m["mode"], mode);
    for (const auto& layer : m["layers"]) EXPECT_EQ(layer["precision"], precision) << mode;
    std::string metrics;
    ASSERT_TRUE(wait_for_metrics(server, [](const std::string&) { return true; }, 5s, &metrics));
    const double w4 = metric_value(metrics, "morphserve:layers_quantized{model_name=\"dummy:tiny\",precision=\"w4\"}");
    EXPECT_EQ(w4, std::string(mode) == "static-w4" ? 4.0 : 0.0) << mode;
    const double degradation = std::string(mode) == "off" ? 0.0 : 1.0;
    EXPECT_EQ(metric_value(metrics, "morphserve:precision_degradation"), degradation) << mode;
    EXPECT_EQ(m["precision_degradation"], degradation) << mode;
    EXPECT_EQ(metric_value(metrics, "vllm:num_requests_waiting{model_name=\"dummy:tiny\"}"), 0.0) << mode;
    EXPECT_EQ(metric_value(metrics, "vllm:kv_cache_usage_perc{model_name=\"dummy:tiny\"}"), 0.0) << mode;
    EXPECT_GT(metric_value(metrics, "vllm:lora_requests_info"), 1.7e9) << "the value is the time, as vLLM writes it";
    EXPECT_NE(metrics.find("vllm:cache_config_info{model_name=\"dummy:tiny\",block_size=\"16\",num_gpu_blocks=\""),
              std::string::npos)
        << metrics;
    EXPECT_EQ(server.terminate(), 0);
  }
}

TEST(MorphBurst, ConflictingFlagsAreRefusedAtStart) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--precision", "all:w4"}, {"--morph", "sometimes"}, {"--mode", "fast"}, {"--morph-order", "/nonexistent/order.json"}}) {
    std::vector<std::string> full{"-m", "dummy:tiny"};
    full.insert(full.end(), args.begin(), args.end());
    try {
      ServerProcess server(full, 20s);
      const auto code = server.wait_exit(20s);
      ASSERT_TRUE(code.has_value()) << args[0];
      EXPECT_NE(*code, 0) << args[0];
    } catch (const std::runtime_error&) {
      // Refused before it listened: also right.
    }
  }
}

}  // namespace
}  // namespace morphserve::testing
