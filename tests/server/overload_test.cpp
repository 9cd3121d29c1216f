// Overload: past --max-queue a request is refused at once (429 with Retry-After); with
// --queue-timeout one that waits too long to be scheduled is dropped (503 with Retry-After, or an
// error event for a stream, whose status was sent when it opened), while the request already
// running goes on undisturbed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <future>

#include "cli/run_command.h"
#include "server_process.h"

namespace morphserve::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

constexpr auto kQueueTimeout = 2500ms;  // above the 2 s after which a whole response would send its status

TEST(Overload, FullQueueIs429AtOnceAndQueueTimeoutIs503) {
  // dummy:small decodes slowly enough on any machine that the one running request (one sequence
  // at a time) outlasts the queue timeout by far.
  ServerProcess server({"-m", "dummy:small", "--memory-budget", "512MiB", "--morph", "off", "--max-num-seqs", "1",
                        "--max-queue", "2", "--queue-timeout", "2500ms"});
  ASSERT_TRUE(server.wait_ready());

  // The running request: a stream that counts its chunks until told to hang up.
  std::atomic<int> running_chunks{0};
  std::atomic<bool> hang_up{false};
  std::promise<void> started;
  auto running = std::async(std::launch::async, [&] {
    auto c = server.client();
    bool signalled = false;
    return post_json(*c, "/v1/completions",
                     json{{"prompt", "Hello"}, {"max_tokens", 4000}, {"ignore_eos", true}, {"logprobs", 0},
                          {"stream", true}}
                         .dump(),
                     {}, [&](const std::string& so_far) {
                       running_chunks = static_cast<int>(sse_payloads(so_far).size());
                       if (!signalled && running_chunks > 0) {
                         signalled = true;
                         started.set_value();
                       }
                       return !hang_up.load();
                     });
  });
  ASSERT_EQ(started.get_future().wait_for(60s), std::future_status::ready);

  // Two requests fill the queue: one whole, one streamed.
  const json queued = {{"prompt", "Hi"}, {"max_tokens", 4}};
  const auto queued_at = Clock::now();
  auto whole = std::async(std::launch::async, [&] {
    auto c = server.client();
    return post_json(*c, "/v1/completions", queued);
  });
  auto streamed = std::async(std::launch::async, [&] {
    auto c = server.client();
    json s = queued;
    s["stream"] = true;
    return post_json(*c, "/v1/completions", s);
  });
  std::string text;
  auto two_waiting = [](const std::string& m) { return model_metric(m, "dummy:small", "num_requests_waiting") == 2; };
  ASSERT_TRUE(wait_for_metrics(server, two_waiting, 2s, &text))
      << text;

  // A third is refused at once: the queue is full.
  {
    auto c = server.client();
    const auto start = Clock::now();
    const Reply refused = post_json(*c, "/v1/completions", queued);
    EXPECT_LT(Clock::now() - start, 1s);
    EXPECT_EQ(refused.status, 429) << refused.body;
    EXPECT_EQ(refused.headers.count("Retry-After"), 1u);
    EXPECT_EQ(json::parse(refused.body)["error"]["code"], "queue_full");
  }

  // The whole request: a real 503, after the timeout and not much later.
  ASSERT_EQ(whole.wait_for(30s), std::future_status::ready);
  const Reply w = whole.get();
  const auto waited = Clock::now() - queued_at;
  EXPECT_EQ(w.status, 503) << w.body;
  EXPECT_EQ(w.headers.count("Retry-After"), 1u);
  const json error = json::parse(w.body)["error"];
  EXPECT_EQ(error["code"], "queue_timeout");
  EXPECT_EQ(error["type"], "service_unavailable_error");
  EXPECT_THAT(error["message"].get<std::string>(), HasSubstr("s in the queue"));
  EXPECT_GE(waited, kQueueTimeout);
  EXPECT_LT(waited, kQueueTimeout + 5s);

  // The stream had its 200 when it opened: it ends with an error event and [DONE].
  ASSERT_EQ(streamed.wait_for(30s), std::future_status::ready);
  const Reply s = streamed.get();
  EXPECT_EQ(s.status, 200);
  const std::vector<std::string> events = sse_payloads(s.body);
  ASSERT_EQ(events.size(), 2u) << s.body;
  EXPECT_EQ(json::parse(events[0])["error"]["code"], "queue_timeout");
  EXPECT_EQ(events[1], "[DONE]");

  // The running request never noticed.
  const int chunks_at_timeout = running_chunks;
  const auto more = Clock::now() + 10s;
  while (running_chunks < chunks_at_timeout + 3 && Clock::now() < more) std::this_thread::sleep_for(20ms);
  EXPECT_GE(running_chunks, chunks_at_timeout + 3);
  EXPECT_EQ(running.wait_for(0s), std::future_status::timeout);
  hang_up = true;
  ASSERT_EQ(running.wait_for(30s), std::future_status::ready);
  EXPECT_EQ(running.get().status, 200);

  // Counted, and nothing left behind; the server serves again at once.
  EXPECT_TRUE(wait_for_metrics(
      server,
      [](const std::string& m) {
        return model_metric(m, "dummy:small", "num_queue_timeouts_total") == 2 &&
               model_metric(m, "dummy:small", "num_requests_running") == 0 &&
               model_metric(m, "dummy:small", "num_requests_waiting") == 0 &&
               model_metric(m, "dummy:small", "kv_blocks_used") == 0;
      },
      5s, &text))
      << text;
  auto c = server.client();
  EXPECT_EQ(post_json(*c, "/v1/completions", json{{"prompt", "Hi"}, {"max_tokens", 2}}).status, 200);
  EXPECT_EQ(server.terminate(), 0) << server.stderr_text();
}

TEST(Overload, TimeoutsMustBeDurations) {
  for (const char* option : {"--queue-timeout", "--read-timeout"}) {
    const CommandResult r = run_morphserve(std::string("serve -m dummy:tiny --port 0 ") + option + " soon");
    EXPECT_EQ(r.exit_code, 1) << option;
    EXPECT_THAT(r.err, HasSubstr("'soon'")) << option;
  }
  const CommandResult zero = run_morphserve("serve -m dummy:tiny --port 0 --read-timeout 0");
  EXPECT_EQ(zero.exit_code, 1);
  EXPECT_THAT(zero.err, HasSubstr("--read-timeout must be positive"));
}

}  // namespace
}  // namespace morphserve::testing
