// The real server under load and abuse: clients that hang up, 32 at once, a full queue, oversize
// bodies and missing API keys.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "server_process.h"

namespace morphserve::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

bool engine_idle(const std::string& metrics) {
  return metric_value(metrics, "morphserve:kv_blocks_used") == 0.0 &&
         metric_value(metrics, "morphserve:num_requests_running") == 0.0 &&
         metric_value(metrics, "morphserve:num_requests_waiting") == 0.0;
}

// Clients that hang up, against a model big enough (dummy:small) that the 4000 tokens they ask for
// would take a minute or more if nobody cancelled them. Each test must leave one more aborted
// request and an idle engine behind.
class Cancellation : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Morphing plays no part here, and without it the server starts in half the time.
    server_ = new ServerProcess({"-m", "dummy:small", "--memory-budget", "512MiB", "--morph", "off"});
    ASSERT_TRUE(server_->wait_ready());
  }
  static void TearDownTestSuite() {
    EXPECT_EQ(server_->terminate(), 0) << server_->stderr_text();
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    std::string text;
    ASSERT_TRUE(wait_for_metrics(*server_, engine_idle, 5s, &text));
    aborted_before_ = aborted(text);
  }
  static double aborted(const std::string& metrics) {
    return metric_value(metrics,
                        "morphserve:request_success_total{model_name=\"dummy:small\",finished_reason=\"abort\"}");
  }
  static json long_request(bool stream) {
    return {{"prompt", "Hello"}, {"max_tokens", 4000}, {"ignore_eos", true}, {"temperature", 0}, {"stream", stream}};
  }
  // The engine publishes its snapshot after each iteration, so poll until it shows the request
  // cancelled (not run to the end) and everything freed.
  void expect_cancelled() {
    std::string last;
    EXPECT_TRUE(wait_for_metrics(
        *server_, [&](const std::string& m) { return engine_idle(m) && aborted(m) == aborted_before_ + 1; }, 3s, &last))
        << last;
  }
  static inline ServerProcess* server_ = nullptr;
  double aborted_before_ = 0;
};

TEST_F(Cancellation, StreamingClientThatHangsUpFreesItsBlocks) {
  json request = long_request(true);
  request["logprobs"] = 0;  // most of dummy:small's vocabulary has no text: logprobs give a chunk per token
  auto client = server_->client();
  double used_while_running = 0;
  const Reply r = post_json(*client, "/v1/completions", request.dump(), {}, [&](const std::string& so_far) {
    if (!has_sse_data_event(so_far)) return true;  // read one whole chunk first
    std::string text;
    wait_for_metrics(*server_, [](const std::string& m) { return metric_value(m, "morphserve:kv_blocks_used") > 0; },
                     3s, &text);
    used_while_running = metric_value(text, "morphserve:kv_blocks_used");
    return false;  // hang up
  });
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr("data: {"));
  EXPECT_GT(used_while_running, 0.0);
  expect_cancelled();
}

TEST_F(Cancellation, QuietStreamStillNoticesTheHangUp) {
  // Tokens without text produce no chunks; keep-alive comments still probe the connection.
  auto client = server_->client();
  const Reply r = post_json(*client, "/v1/completions", long_request(true).dump(), {},
                            [](const std::string& so_far) { return so_far.find("\n\n") == std::string::npos; });
  EXPECT_EQ(r.status, 200);
  expect_cancelled();
}

TEST_F(Cancellation, WholeResponseClientThatHangsUpIsCancelled) {
  // A long whole response turns into a chunked body of whitespace heartbeats; hang up at the first.
  auto client = server_->client();
  const Reply r = post_json(*client, "/v1/completions", long_request(false).dump(), {},
                            [](const std::string&) { return false; });
  EXPECT_EQ(r.status, 200);
  expect_cancelled();
}

TEST(ServerLoad, ThirtyTwoConcurrentClientsGetTheirOneAtATimeOutputs) {
  // Full precision throughout: under dynamic morphing a queue that builds up may (rightly) swap
  // layers to W4, and then outputs depend on the load by design.
  ServerProcess server({"-m", "dummy:tiny", "--morph", "off"});
  ASSERT_TRUE(server.wait_ready());
  constexpr int kClients = 32;
  auto request = [](int i) {
    return json{{"prompt", "Request number " + std::to_string(i * 7919)},
                {"max_tokens", 24 + i % 5},
                {"temperature", 0},
                {"ignore_eos", true},
                {"stream", i % 2 == 1}};
  };
  // A slow server starts a stream with keep-alive comments and a whole response with whitespace.
  auto text_of = [](const Reply& r, bool streamed) {
    if (!streamed) return json::parse(r.body)["choices"][0]["text"].get<std::string>();
    std::string text;
    for (const std::string& e : sse_payloads(r.body)) {
      if (e != "[DONE]") text += json::parse(e)["choices"][0]["text"].get<std::string>();
    }
    return text;
  };
  std::vector<std::string> expected(kClients);
  {
    auto c = server.client();
    for (int i = 0; i < kClients; ++i) {
      const Reply r = post_json(*c, "/v1/completions", request(i));
      ASSERT_EQ(r.status, 200) << r.body;
      expected[static_cast<size_t>(i)] = text_of(r, request(i)["stream"].get<bool>());
    }
  }
  std::vector<std::string> got(kClients);
  std::vector<int> status(kClients, 0);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      auto c = server.client();
      ready.fetch_add(1);
      while (ready.load() < kClients) std::this_thread::yield();  // all start together
      const Reply r = post_json(*c, "/v1/completions", request(i));
      status[static_cast<size_t>(i)] = r.status;
      if (r.status == 0) ADD_FAILURE() << "client " << i << ": " << r.error;
      try {  // an exception escaping a thread would abort the whole test program
        if (r.status == 200) got[static_cast<size_t>(i)] = text_of(r, request(i)["stream"].get<bool>());
      } catch (const std::exception& e) {
        ADD_FAILURE() << "client " << i << ": " << e.what() << " in " << r.body;
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kClients; ++i) {
    if (status[static_cast<size_t>(i)] == 0) ADD_FAILURE() << server.stderr_text();
    EXPECT_EQ(status[static_cast<size_t>(i)], 200) << "client " << i;
    EXPECT_EQ(got[static_cast<size_t>(i)], expected[static_cast<size_t>(i)]) << "client " << i;
  }
  std::string last;
  EXPECT_TRUE(wait_for_metrics(server, engine_idle, 3s, &last)) << last;
  EXPECT_EQ(server.terminate(), 0);
}

TEST(ServerLoad, FullQueueIs429WithRetryAfter) {
  ServerProcess server({"-m", "dummy:tiny", "--max-num-seqs", "1", "--max-queue", "1"});
  ASSERT_TRUE(server.wait_ready());
  constexpr int kClients = 12;
  std::vector<Reply> replies(kClients);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      auto c = server.client();
      ready.fetch_add(1);
      while (ready.load() < kClients) std::this_thread::yield();
      replies[static_cast<size_t>(i)] = post_json(
          *c, "/v1/completions", json{{"prompt", "flood"}, {"max_tokens", 300}, {"ignore_eos", true}, {"temperature", 0}});
    });
  }
  for (auto& t : threads) t.join();
  int ok = 0, busy = 0;
  for (const Reply& r : replies) {
    if (r.status == 200) ++ok;
    if (r.status != 429) continue;
    ++busy;
    EXPECT_EQ(r.headers.count("Retry-After"), 1u);
    EXPECT_EQ(json::parse(r.body)["error"]["code"], "queue_full") << r.body;
  }
  EXPECT_GE(ok, 1);
  EXPECT_GE(busy, 1);
  EXPECT_EQ(ok + busy, kClients);
  EXPECT_EQ(server.terminate(), 0);
}

TEST(ServerLoad, ApiKeyAndBodyLimit) {
  ServerProcess server({"-m", "dummy:tiny", "--api-key", "sekret", "--max-body-bytes", "2KiB"});
  ASSERT_TRUE(server.wait_ready());
  auto c = server.client();
  const json body = {{"prompt", "hi"}, {"max_tokens", 2}};
  for (const httplib::Headers& headers : {httplib::Headers{}, httplib::Headers{{"Authorization", "Bearer wrong"}},
                                          httplib::Headers{{"Authorization", "sekret"}}}) {
    const Reply r = post_json(*c, "/v1/completions", body, headers);
    EXPECT_EQ(r.status, 401) << r.body;
    EXPECT_EQ(json::parse(r.body)["error"]["code"], "invalid_api_key");
  }
  auto models = c->Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 401);
  // Health checks and scrapers need no key.
  EXPECT_EQ(c->Get("/health")->status, 200);
  EXPECT_EQ(c->Get("/metrics")->status, 200);
  const httplib::Headers auth = {{"Authorization", "Bearer sekret"}};
  EXPECT_EQ(post_json(*c, "/v1/completions", body, auth).status, 200);
  EXPECT_EQ(c->Get("/v1/models", auth)->status, 200);

  const Reply big = post_json(*c, "/v1/completions", json{{"prompt", std::string(4096, 'a')}}, auth);
  EXPECT_EQ(big.status, 413);
  EXPECT_THAT(json::parse(big.body)["error"]["message"].get<std::string>(), HasSubstr("--max-body-bytes"));
  auto c2 = server.client();
  EXPECT_EQ(post_json(*c2, "/v1/completions", body, auth).status, 200);  // still serving
  EXPECT_EQ(server.terminate(), 0);
}

}  // namespace
}  // namespace morphserve::testing
