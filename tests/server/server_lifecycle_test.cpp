// The server's life: 503 while loading, SIGTERM/SIGINT drain in-flight requests (503 for new ones),
// cancel what outlives the grace period, and exit 0.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>

#include "cli/run_command.h"
#include "server_process.h"

namespace morphserve::testing {
namespace {

using nlohmann::json;

// Streams a completion on its own thread; `started` is set once the first chunk arrived.
std::future<Reply> stream_in_background(const ServerProcess& server, int max_tokens, std::promise<void>& started) {
  return std::async(std::launch::async, [&server, max_tokens, &started] {
    auto c = server.client();
    bool signalled = false;
    return post_json(*c, "/v1/completions",
                     json{{"prompt", "Hello"}, {"max_tokens", max_tokens}, {"ignore_eos", true}, {"temperature", 0},
                          {"stream", true}}
                         .dump(),
                     {}, [&](const std::string& so_far) {
                       if (!signalled && has_sse_data_event(so_far)) {
                         signalled = true;
                         started.set_value();
                       }
                       return true;
                     });
  });
}

TEST(ServerLifecycle, LoadingIs503ThenReady) {
  ServerProcess server({"-m", "dummy:tiny", "--debug-load-delay", "3s"});
  auto c = server.client();
  auto health = c->Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 503);
  EXPECT_EQ(json::parse(health->body), (json{{"status", "loading"}}));
  const Reply r = post_json(*c, "/v1/completions", json{{"prompt", "hi"}});
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "model_loading");
  EXPECT_EQ(c->Get("/metrics")->status, 200);  // scrapers keep working
  EXPECT_EQ(c->Get("/v1/models")->status, 503);
  EXPECT_TRUE(server.wait_ready(60s));
  EXPECT_EQ(post_json(*c, "/v1/completions", json{{"prompt", "hi"}, {"max_tokens", 2}}).status, 200);
  EXPECT_EQ(server.terminate(), 0);
}

TEST(ServerLifecycle, SignalWhileLoadingExitsCleanly) {
  ServerProcess server({"-m", "dummy:tiny", "--debug-load-delay", "30s"});
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(server.terminate(10s), 0) << server.stderr_text();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(ServerLifecycle, SigtermDrainsInFlightAndRefusesNewRequests) {
  // 1000 tokens outlast the checks below in Release and still finish well inside the grace period
  // under ASan on a loaded machine (about 10 s here).
  ServerProcess server({"-m", "dummy:tiny", "--shutdown-timeout", "180s"});
  ASSERT_TRUE(server.wait_ready());
  std::promise<void> started;
  std::future<Reply> in_flight = stream_in_background(server, 1000, started);
  ASSERT_EQ(started.get_future().wait_for(30s), std::future_status::ready);
  server.signal(SIGTERM);

  auto c = server.client();
  bool refused = false;
  for (int i = 0; i < 200 && !refused; ++i) {
    auto h = c->Get("/health");
    refused = h && h->status == 503 && json::parse(h->body)["status"] == "shutting_down";
    if (!refused) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(refused);
  const Reply late = post_json(*c, "/v1/completions", json{{"prompt", "hi"}});
  EXPECT_EQ(late.status, 503) << late.body;
  EXPECT_EQ(json::parse(late.body)["error"]["code"], "shutting_down");

  ASSERT_EQ(in_flight.wait_for(180s), std::future_status::ready);
  const Reply drained = in_flight.get();
  const std::vector<std::string> events = sse_payloads(drained.body);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.back(), "[DONE]");
  EXPECT_EQ(json::parse(events[events.size() - 2])["choices"][0]["finish_reason"], "length");  // ran to the end
  EXPECT_EQ(server.wait_exit(20s), 0) << server.stderr_text();
}

TEST(ServerLifecycle, GracePeriodOverCancelsAndExits) {
  ServerProcess server({"-m", "dummy:tiny", "--shutdown-timeout", "300ms"});
  ASSERT_TRUE(server.wait_ready());
  std::promise<void> started;
  std::future<Reply> in_flight = stream_in_background(server, 4000, started);
  ASSERT_EQ(started.get_future().wait_for(30s), std::future_status::ready);
  const auto start = std::chrono::steady_clock::now();
  server.signal(SIGTERM);
  ASSERT_EQ(in_flight.wait_for(20s), std::future_status::ready);
  const Reply cut = in_flight.get();
  const std::vector<std::string> events = sse_payloads(cut.body);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.back(), "[DONE]");
  EXPECT_EQ(json::parse(events[events.size() - 2])["error"]["code"], "shutting_down");
  EXPECT_EQ(server.wait_exit(20s), 0) << server.stderr_text();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
}

TEST(ServerLifecycle, SigintExitsZero) {
  ServerProcess server({"-m", "dummy:tiny"});
  ASSERT_TRUE(server.wait_ready());
  server.signal(SIGINT);
  EXPECT_EQ(server.wait_exit(20s), 0) << server.stderr_text();
}

TEST(ServerLifecycle, BadModelFailsToStartWithAMessage) {
  ServerProcess server({"-m", "/nonexistent/model.gguf"});
  EXPECT_EQ(server.wait_exit(20s), 1);
  EXPECT_THAT(server.stderr_text(), ::testing::HasSubstr("morphserve: error:"));
}

TEST(ServerLifecycle, PortInUseFailsClearly) {
  ServerProcess first({"-m", "dummy:tiny"});
  const CommandResult second = run_morphserve("serve -m dummy:tiny --port " + std::to_string(first.port()));
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_THAT(second.err, ::testing::HasSubstr("cannot listen on 127.0.0.1:" + std::to_string(first.port())));
}

TEST(ServerLifecycle, BudgetTooSmallFailsClearly) {
  const CommandResult r = run_morphserve("serve -m dummy:tiny --port 0 --memory-budget 1MiB");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, ::testing::HasSubstr("memory budget 1.0 MiB is too small"));
}

}  // namespace
}  // namespace morphserve::testing
