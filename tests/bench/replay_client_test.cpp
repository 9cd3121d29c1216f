#include "bench/replay_client.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <numeric>

#include <gtest/gtest.h>

#include "bench/fake_openai_server.h"
#include "core/error.h"

namespace morphserve::bench {
namespace {

using namespace std::chrono_literals;
using ::morphserve::testing::FakeOpenAiServer;
using Failure = FakeOpenAiServer::Failure;

Workload workload_of(const std::vector<WorkloadRequest>& requests) { return Workload{"test", requests}; }

Workload burst(int n, int64_t prompt = 8, int64_t output = 2) {
  return workload_of(std::vector<WorkloadRequest>(static_cast<size_t>(n), WorkloadRequest{0.0, prompt, output}));
}

ReplayOptions options_for(const std::string& url) {
  ReplayOptions o;
  o.url = url;
  o.request_timeout_seconds = 30;
  o.sample_interval_seconds = 0;
  o.prompts = std::make_shared<PromptSource>(std::vector<int32_t>{101, 102, 103, 104, 105, 106, 107}, PromptSourceOptions{});
  return o;
}

TEST(ReplayClient, RecordsTtftAndInterTokenTimesOfTheImposedDelays) {
  FakeOpenAiServer server({.first_token_delay = 300ms, .token_delay = 100ms});
  const BenchRun run = replay(workload_of({{0.0, 8, 5}}), options_for(server.url()));
  EXPECT_EQ(run.model, "fake-model");  // from GET /v1/models
  ASSERT_EQ(run.records.size(), 1u);
  const RequestRecord& r = run.records[0];
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.http_status, 200);
  EXPECT_EQ(r.output_tokens, 5);
  EXPECT_EQ(r.prompt_tokens, 8);
  EXPECT_EQ(r.max_tokens, 5);
  ASSERT_EQ(r.token_seconds.size(), 5u);
  ASSERT_TRUE(r.ttft());
  // Generous bounds: the machine is shared and noisy; only the order of magnitude is checked.
  EXPECT_GE(*r.ttft(), 0.25);
  EXPECT_LT(*r.ttft(), 3.0);
  const double mean_gap = (r.token_seconds.back() - r.token_seconds.front()) / 4.0;
  EXPECT_GE(mean_gap, 0.05);
  EXPECT_LT(mean_gap, 1.0);
  EXPECT_TRUE(std::is_sorted(r.token_seconds.begin(), r.token_seconds.end()));
  EXPECT_GE(r.end_seconds, r.token_seconds.back());
  EXPECT_GT(run.duration_seconds, 0.6);
  EXPECT_EQ(r.output_text, " t0 t1 t2 t3 t4");
}

TEST(ReplayClient, BodiesAskForExactlyTheTracesLengths) {
  FakeOpenAiServer server;
  ReplayOptions o = options_for(server.url());
  o.extra_fields = {{"top_k", 1}, {"temperature", nullptr}};
  const BenchRun run = replay(workload_of({{0.0, 12, 3}, {0.0, 5, 2}}), o);
  for (const RequestRecord& r : run.records) EXPECT_TRUE(r.ok()) << r.error;
  const auto bodies = server.bodies();
  ASSERT_EQ(bodies.size(), 3u);  // the preflight, then the two requests
  EXPECT_EQ(bodies[0]["max_tokens"], 1);
  EXPECT_EQ(bodies[0]["stream"], false);
  std::vector<size_t> prompt_sizes;
  for (size_t i = 1; i < bodies.size(); ++i) {
    const auto& b = bodies[i];
    EXPECT_EQ(b["model"], "fake-model");
    EXPECT_EQ(b["stream"], true);
    EXPECT_EQ(b["stream_options"]["include_usage"], true);
    EXPECT_EQ(b["ignore_eos"], true);
    EXPECT_EQ(b["top_k"], 1);
    EXPECT_FALSE(b.contains("temperature"));  // removed by a null extra field
    ASSERT_TRUE(b["prompt"].is_array());
    prompt_sizes.push_back(b["prompt"].size());
    EXPECT_EQ(b["max_tokens"], b["prompt"].size() == 12 ? 3 : 2);
  }
  std::sort(prompt_sizes.begin(), prompt_sizes.end());
  EXPECT_EQ(prompt_sizes, (std::vector<size_t>{5, 12}));
}

TEST(ReplayClient, RequestsGoOutConcurrentlyEachOnItsOwnConnection) {
  // The server holds every request until 8 are open at once: a client that serialized them, or
  // shared connections, would leave it waiting.
  FakeOpenAiServer server({.block_until_in_flight = 8});
  ReplayOptions o = options_for(server.url());
  o.preflight = false;
  o.model = "fake-model";
  const BenchRun run = replay(burst(8), o);
  EXPECT_EQ(server.max_in_flight_seen(), 8);
  for (const RequestRecord& r : run.records) EXPECT_TRUE(r.ok()) << r.error;
  EXPECT_LT(run.duration_seconds, 9.0) << "requests waited for each other";
}

TEST(ReplayClient, MaxInFlightCapsOpenRequestsAndRecordsTheLateness) {
  FakeOpenAiServer server({.token_delay = 100ms});
  ReplayOptions o = options_for(server.url());
  o.max_in_flight = 2;
  o.preflight = false;
  const BenchRun run = replay(burst(6, 8, 3), o);
  EXPECT_LE(server.max_in_flight_seen(), 2);
  for (const RequestRecord& r : run.records) EXPECT_TRUE(r.ok()) << r.error;
  const double latest_send =
      std::max_element(run.records.begin(), run.records.end(), [](const auto& a, const auto& b) {
        return a.send_seconds < b.send_seconds;
      })->send_seconds;
  EXPECT_GT(latest_send, 0.15) << "the capped requests should have gone late";
}

TEST(ReplayClient, SendsEachRequestAtItsArrivalTime) {
  FakeOpenAiServer server;
  ReplayOptions o = options_for(server.url());
  o.preflight = false;
  const BenchRun run = replay(workload_of({{0.0, 4, 1}, {0.3, 4, 1}, {0.6, 4, 1}}), o);
  for (const RequestRecord& r : run.records) {
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_GE(r.send_seconds, r.scheduled_seconds - 0.005);
    EXPECT_LT(r.send_seconds, r.scheduled_seconds + 0.5);
  }
  EXPECT_DOUBLE_EQ(run.records[1].scheduled_seconds, 0.3);
}

TEST(ReplayClient, HttpErrorsAreRecordedNotFatal) {
  FakeOpenAiServer server({.failure = Failure::Http500});
  ReplayOptions o = options_for(server.url());
  o.preflight = false;
  const BenchRun run = replay(burst(3), o);
  ASSERT_EQ(run.records.size(), 3u);
  for (const RequestRecord& r : run.records) {
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.http_status, 500);
    EXPECT_EQ(r.error, "HTTP 500: boom");
  }
}

TEST(ReplayClient, PreflightFailsTheRunBeforeItStarts) {
  FakeOpenAiServer server({.failure = Failure::Http500});
  EXPECT_THROW(replay(burst(3), options_for(server.url())), InvalidArgument);
  EXPECT_EQ(server.bodies().size(), 1u);
}

TEST(ReplayClient, ConnectionRefusedIsRecorded) {
  ReplayOptions o = options_for("http://127.0.0.1:" + std::to_string(testing::closed_port()));
  o.preflight = false;
  o.model = std::string("m");  // assigning the literal trips GCC 12's false -Wrestrict at -O3
  const BenchRun run = replay(burst(2), o);
  for (const RequestRecord& r : run.records) {
    EXPECT_EQ(r.http_status, 0);
    EXPECT_EQ(r.error.rfind("connection failed", 0), 0u) << r.error;
  }
}

TEST(ReplayClient, UnreachableServerAtStartIsAClearError) {
  ReplayOptions o = options_for("http://127.0.0.1:" + std::to_string(testing::closed_port()));
  try {
    replay(burst(1), o);
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("cannot reach"), std::string::npos) << e.what();
  }
}

TEST(ReplayClient, BrokenStreamsAreRecorded) {
  struct Case {
    Failure failure;
    std::string error;
  };
  for (const Case& c : {Case{Failure::Truncated, "stream"}, Case{Failure::NoDone, "stream ended without [DONE]"},
                        Case{Failure::StreamErrorEvent, "stream error: engine failed"}}) {
    FakeOpenAiServer server({.failure = c.failure});
    ReplayOptions o = options_for(server.url());
    o.preflight = false;
    const BenchRun run = replay(burst(2, 8, 4), o);
    for (const RequestRecord& r : run.records) {
      EXPECT_FALSE(r.ok());
      EXPECT_EQ(r.http_status, 200);
      EXPECT_NE(r.error.find(c.error), std::string::npos) << r.error;
      EXPECT_GE(r.token_seconds.size(), 2u);  // what came before the failure is kept
    }
  }
}

TEST(ReplayClient, EventsSplitAcrossReadsWithCommentsAndCrlf) {
  FakeOpenAiServer server({.split_events = true, .crlf = true});
  ReplayOptions o = options_for(server.url());
  o.preflight = false;
  const BenchRun run = replay(workload_of({{0.0, 8, 4}}), o);
  const RequestRecord& r = run.records[0];
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.token_seconds.size(), 4u);
  EXPECT_EQ(r.output_tokens, 4);
}

TEST(ReplayClient, AFinishingChunkWithoutTextIsTheFirstTokenWhenNothingCameBefore) {
  // Servers hold back text that is not valid UTF-8 yet; for some outputs nothing comes until the end.
  FakeOpenAiServer server({.first_token_delay = 100ms, .held_back_text = true});
  ReplayOptions o = options_for(server.url());
  o.preflight = false;
  const BenchRun run = replay(workload_of({{0.0, 8, 6}}), o);
  const RequestRecord& r = run.records[0];
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.token_seconds.size(), 1u);
  EXPECT_TRUE(r.first_token_seconds);
  EXPECT_EQ(r.output_tokens, 6);  // from usage
}

TEST(ReplayClient, StreamsTheChatApiWithTextPrompts) {
  FakeOpenAiServer server({.token_delay = 20ms});
  ReplayOptions o = options_for(server.url());
  o.endpoint = "/v1/chat/completions";
  PromptSourceOptions text;
  text.format = PromptFormat::Text;
  o.prompts = std::make_shared<PromptSource>(PromptSource::prepare(text, parse_server_url(server.url()), "", "fake-model"));
  const BenchRun run = replay(workload_of({{0.0, 8, 4}}), o);
  const RequestRecord& r = run.records[0];
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.token_seconds.size(), 4u);  // the opening role chunk is not a token
  EXPECT_EQ(r.prompt_tokens, 3);          // the server's usage.prompt_tokens: text prompts are approximate
  EXPECT_EQ(r.output_text, " t0 t1 t2 t3");
  const auto bodies = server.bodies();
  ASSERT_FALSE(bodies.empty());
  EXPECT_EQ(bodies.back()["messages"][0]["role"], "user");
  EXPECT_TRUE(bodies.back()["messages"][0]["content"].is_string());
  EXPECT_FALSE(bodies.back().contains("prompt"));
}

TEST(ReplayClient, TimeoutIsRecorded) {
  FakeOpenAiServer server({.first_token_delay = 1500ms});
  ReplayOptions o = options_for(server.url());
  o.preflight = false;
  o.request_timeout_seconds = 0.3;
  const BenchRun run = replay(workload_of({{0.0, 8, 2}}), o);
  EXPECT_NE(run.records[0].error.find("timed out"), std::string::npos) << run.records[0].error;
  EXPECT_LT(run.records[0].e2e(), 1.4);
}

TEST(ReplayClient, SamplesTheServerDuringTheRun) {
  FakeOpenAiServer server({.token_delay = 100ms});
  ReplayOptions o = options_for(server.url());
  o.preflight = false;
  o.sample_interval_seconds = 0.1;
  const BenchRun run = replay(workload_of({{0.0, 8, 5}}), o);
  ASSERT_GE(run.samples.size(), 2u);
  for (const ServerSample& s : run.samples) {
    EXPECT_EQ(s.values.at("num_requests_running"), 2.0);
    EXPECT_EQ(s.values.at("morph_layers_quantized"), 1.0);
  }
  EXPECT_TRUE(std::is_sorted(run.samples.begin(), run.samples.end(),
                             [](const auto& a, const auto& b) { return a.seconds < b.seconds; }));
}

TEST(ReplayClient, RejectsTokenIdsOnTheChatEndpoint) {
  FakeOpenAiServer server;
  ReplayOptions o = options_for(server.url());
  o.endpoint = "/v1/chat/completions";
  EXPECT_THROW(replay(burst(1), o), InvalidArgument);
}

}  // namespace
}  // namespace morphserve::bench
