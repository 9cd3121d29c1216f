// Model files that change under a running server: the replica file deleted, the model GGUF
// truncated while layers are quantized. The server must not crash: it suspends morphing, says why
// in its log and /morph, and serves every request at the precisions it has.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "model/dummy_model.h"
#include "model/gguf_test_support.h"
#include "morph/llama_gguf_fixture.h"
#include "morph_queries.h"
#include "server_process.h"
#include "test_backend.h"

namespace morphserve::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

bool healthy(const ServerProcess& server) {
  auto c = server.client(5s);
  auto r = c->Get("/health");
  return r && r->status == 200;
}

// Polls /morph until `done` holds or the deadline passes; returns the last document.
template <typename Pred>
json wait_for_morph(const ServerProcess& server, Pred done, std::chrono::seconds timeout) {
  json m;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    m = get_morph(server);
    if (!m.is_null() && done(m)) break;
    std::this_thread::sleep_for(50ms);
  }
  return m;
}

// `clients` concurrent completions of 100 tokens; the HTTP status of each.
std::vector<int> burst(const ServerProcess& server, int clients) {
  std::vector<int> status(static_cast<size_t>(clients), 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      auto c = server.client(120s);
      const Reply r = post_json(*c, "/v1/completions",
                                json{{"prompt", "Once upon a time " + std::to_string(i)},
                                     {"max_tokens", 100},
                                     {"ignore_eos", true},
                                     {"stream", i % 2 == 0}});
      status[static_cast<size_t>(i)] = r.status;
    });
  }
  for (auto& t : threads) t.join();
  return status;
}

class ModelFileChange : public ::testing::Test {
 protected:
  void SetUp() override { write_llama_gguf(make_dummy_model("tiny", DType::F16, test_backend()), model_path); }
  std::vector<std::string> args() const {
    return {"-m", model_path, "--replicas", replica_path, "--memory-budget", "3MiB", "--max-model-len", "256",
            "--max-num-batched-tokens", "64", "--mode", "performance", "--morph-hold", "0.5s"};
  }

  TempDir dir;
  std::string model_path = dir.file("model.gguf");
  std::string replica_path = dir.file("model.replicas.gguf");
};

TEST_F(ModelFileChange, ADeletedReplicaFileSuspendsMorphingAndServingGoesOn) {
  ServerProcess server(args());
  ASSERT_TRUE(server.wait_ready());
  ASSERT_TRUE(fs::exists(replica_path)) << "serve writes the replica file on first start";
  EXPECT_TRUE(get_morph(server)["suspended"].is_null());
  auto suspended_gauge = [](const std::string& metrics) { return metric_value(metrics, "morphserve:morph_suspended"); };
  std::string metrics;
  EXPECT_TRUE(wait_for_metrics(server, [&](const std::string& m) { return suspended_gauge(m) == 0.0; }, 5s, &metrics))
      << metrics;

  fs::remove(replica_path);
  // Noticed while idle, before any burst needs a replica (the engine looks once a second).
  const json suspended = wait_for_morph(server, [](const json& m) { return !m["suspended"].is_null(); }, 10s);
  ASSERT_FALSE(suspended["suspended"].is_null()) << suspended.dump(2);
  EXPECT_NE(suspended["suspended"].get<std::string>().find(replica_path + " was deleted"), std::string::npos)
      << suspended["suspended"];
  EXPECT_TRUE(wait_for_metrics(server, [&](const std::string& m) { return suspended_gauge(m) == 1.0; }, 5s, &metrics))
      << metrics;

  for (int s : burst(server, 24)) EXPECT_EQ(s, 200);
  const json after = get_morph(server);
  EXPECT_EQ(quantized_layers(after), 0) << "nothing may be swapped in from a deleted file";
  EXPECT_EQ(after["swaps"]["down"], 0);
  EXPECT_NE(after["controller"]["last_decision"]["reason"].get<std::string>().find("morphing suspended"),
            std::string::npos);
  EXPECT_TRUE(healthy(server));
  EXPECT_EQ(server.terminate(), 0);
  EXPECT_NE(server.stderr_text().find("morphing suspended"), std::string::npos) << server.stderr_text();
}

TEST_F(ModelFileChange, AModelFileTruncatedWhileLayersAreQuantizedKeepsThemQuantizedAndServing) {
  ServerProcess server(args());
  ASSERT_TRUE(server.wait_ready());
  // Quantize some layers with a burst in the background, then cut the model file in half: the
  // restores have nowhere to read full precision from.
  std::vector<int> first;
  std::thread load([&] { first = burst(server, 24); });
  const json quantized = wait_for_morph(server, [](const json& m) { return quantized_layers(m) > 0; }, 60s);
  fs::resize_file(model_path, fs::file_size(model_path) / 2);
  load.join();
  ASSERT_GT(quantized_layers(quantized), 0) << "the burst never quantized a layer";
  for (int s : first) EXPECT_EQ(s, 200);

  const json suspended = wait_for_morph(server, [](const json& m) { return !m["suspended"].is_null(); }, 10s);
  ASSERT_FALSE(suspended["suspended"].is_null()) << suspended.dump(2);
  EXPECT_NE(suspended["suspended"].get<std::string>().find("truncated"), std::string::npos) << suspended["suspended"];
  // Serving goes on at the precisions it has: requests still complete, blocks still come back.
  for (int s : burst(server, 8)) EXPECT_EQ(s, 200);
  const json idle = wait_for_morph(server, [](const json& m) { return m["kv"]["blocks_used"] == 0; }, 10s);
  EXPECT_EQ(idle["kv"]["blocks_used"], 0);
  EXPECT_EQ(idle["swaps"]["in_flight"], 0);
  EXPECT_LE(idle["budget"]["peak"].get<size_t>(), idle["budget"]["bytes"].get<size_t>());
  EXPECT_TRUE(healthy(server));
  EXPECT_EQ(server.terminate(), 0) << server.stderr_text();
}

}  // namespace
}  // namespace morphserve::testing
