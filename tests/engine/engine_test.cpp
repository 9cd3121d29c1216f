// The engine thread end to end on random-weight and real models: batching, preemption and
// cancellation must not change what any request gets.
#include "engine/engine.h"

#include <chrono>
#include <fstream>
#include <memory>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/generation.h"
#include "engine/llama_runner.h"
#include "engine/model_loader.h"
#include "kernels/thread_pool.h"
#include "test_data.h"
#include "test_backend.h"

namespace morphserve {
namespace {

using namespace std::chrono_literals;

struct Completion {
  std::vector<int32_t> tokens;
  std::string text;
  FinishReason finish = FinishReason::Error;
};

Completion collect(RequestStream& stream, std::chrono::seconds timeout = 60s) {
  Completion c;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  RequestOutput update;
  while (stream.next(update, deadline)) {
    for (const auto& t : update.tokens) c.tokens.push_back(t.token);
    c.text += update.text;
    if (update.finish) c.finish = *update.finish;
  }
  EXPECT_TRUE(stream.finished()) << "request " << stream.id() << " did not finish in time";
  return c;
}

std::vector<int32_t> prompt_of(size_t n, int32_t salt) {
  std::vector<int32_t> tokens{1};
  for (size_t i = 1; i < n; ++i) tokens.push_back(static_cast<int32_t>(3 + (i * 31 + salt * 7) % 256));
  return tokens;
}

class EngineOnModel : public ::testing::Test {
 protected:
  // The real model when it is there: batch composition changes float summation order (GEMV vs
  // GEMM), and a random-weight model has near-tied logits that such noise can flip, while the
  // trained model's greedy choices have real margins.
  void SetUp() override {
    const auto stories = ::morphserve::testing::shared_data_file("models/stories260K.gguf");
    model_ = std::make_unique<LlamaModel>(load_model(stories.empty() ? "dummy:tiny:f32" : stories.string(), "", pool_, test_backend()));
  }

  EngineConfig config(int64_t kv_blocks, int64_t batch_tokens = 64, int max_seqs = 16) const {
    EngineConfig c;
    c.scheduler.max_num_batched_tokens = batch_tokens;
    c.scheduler.max_num_seqs = max_seqs;
    c.kv_type = DType::F32;
    c.kv_blocks = kv_blocks;
    return c;
  }

  // The same request run alone through the single-sequence path (on its own thread pool: the
  // engine thread is using pool_).
  std::vector<int32_t> alone(const std::vector<int32_t>& prompt, int64_t n) {
    KvBlockPool kv(KvLayout{model_->config.n_layers, 16, model_->config.kv_dim(), DType::F32}, 64, alone_backend_);
    LlamaRunner runner(*model_, kv, alone_backend_, 64);
    GenerationOptions options;
    options.max_new_tokens = n;
    std::vector<int32_t> out;
    generate_tokens(runner, kv, prompt, options, [&](int32_t t) { return out.push_back(t), true; });
    return out;
  }

  RequestParams greedy(const std::vector<int32_t>& prompt, int64_t n) const {
    RequestParams p;
    p.prompt = prompt;
    p.max_tokens = n;
    p.ignore_eos = true;
    return p;
  }

  ThreadPool pool_{2};
  ThreadPool alone_pool_{1};
  UnmeteredCpuBackend backend_{pool_};
  UnmeteredCpuBackend alone_backend_{alone_pool_};
  std::unique_ptr<LlamaModel> model_;
};

TEST_F(EngineOnModel, ConcurrentRequestsEqualOneAtATime) {
  Engine engine(*model_, config(256), backend_);
  std::vector<std::shared_ptr<RequestStream>> streams;
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 12; ++i) {
    prompts.push_back(prompt_of(5 + static_cast<size_t>(i) * 9, i));  // prompts up to 104 tokens: chunked prefill
    streams.push_back(engine.submit(greedy(prompts.back(), 12)));
  }
  for (size_t i = 0; i < streams.size(); ++i) {
    const Completion c = collect(*streams[i]);
    EXPECT_EQ(c.finish, FinishReason::Length);
    EXPECT_EQ(c.tokens, alone(prompts[i], 12)) << "request " << i;
  }
  engine.shutdown(true);
  EXPECT_EQ(engine.snapshot().kv_blocks_used, 0);
  EXPECT_GT(engine.metrics().time_to_first_token_seconds.snapshot().count, 11u);
}

TEST_F(EngineOnModel, PreemptionByRecomputeLosesNothing) {
  // 12 blocks of 16 tokens cannot hold eight 60-token sequences at once: the scheduler must
  // preempt and recompute, and every request must still get exactly its one-at-a-time output.
  Engine engine(*model_, config(12, 64, 8), backend_);
  std::vector<std::shared_ptr<RequestStream>> streams;
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 8; ++i) {
    prompts.push_back(prompt_of(30, i + 100));
    streams.push_back(engine.submit(greedy(prompts.back(), 30)));
  }
  for (size_t i = 0; i < streams.size(); ++i) EXPECT_EQ(collect(*streams[i]).tokens, alone(prompts[i], 30)) << i;
  engine.shutdown(true);  // the snapshot is published after the step that finished the last request
  EXPECT_GT(engine.snapshot().num_preemptions, 0);
  EXPECT_EQ(engine.snapshot().kv_blocks_used, 0);
}

TEST_F(EngineOnModel, CancellationFreesBlocksAtOnce) {
  Engine engine(*model_, config(64), backend_);
  auto stream = engine.submit(greedy(prompt_of(20, 3), 900));
  RequestOutput update;
  ASSERT_TRUE(stream->next(update, std::chrono::steady_clock::now() + 30s));
  stream->cancel();
  const Completion c = collect(*stream);
  EXPECT_EQ(c.finish, FinishReason::Cancelled);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (engine.snapshot().kv_blocks_used != 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(engine.snapshot().kv_blocks_used, 0);
  EXPECT_EQ(engine.snapshot().num_running, 0);
}

TEST_F(EngineOnModel, ReleasesFreeHeapMemoryOnceIdleAfterWork) {
  EngineConfig c = config(64);
  c.release_heap_after_idle = 200ms;
  Engine engine(*model_, c, backend_);
  auto wait_for_releases = [&](int64_t n) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (engine.snapshot().heap_releases < n && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
    return engine.snapshot().heap_releases;
  };
  std::this_thread::sleep_for(400ms);
  EXPECT_EQ(engine.snapshot().heap_releases, 0) << "nothing ran yet, so there is nothing to give back";
  EXPECT_EQ(collect(*engine.submit(greedy(prompt_of(20, 1), 8))).finish, FinishReason::Length);
  EXPECT_EQ(wait_for_releases(1), 1);
  std::this_thread::sleep_for(400ms);
  EXPECT_EQ(engine.snapshot().heap_releases, 1) << "one release per idle spell, not one per idle wake-up";
  EXPECT_EQ(collect(*engine.submit(greedy(prompt_of(20, 2), 8))).finish, FinishReason::Length);
  EXPECT_EQ(wait_for_releases(2), 2);
}

TEST_F(EngineOnModel, RefusesWhatCannotBeServed) {
  Engine engine(*model_, config(4), backend_);  // 64 KV tokens
  EXPECT_THROW(engine.submit(greedy(prompt_of(60, 1), 10)), InvalidArgument);   // more than the KV cache
  EXPECT_THROW(engine.submit(greedy(prompt_of(10, 1), 5000)), InvalidArgument);  // more than the context
  EXPECT_THROW(engine.submit(greedy({}, 10)), InvalidArgument);
  EXPECT_THROW(engine.submit(greedy(prompt_of(10, 1), INT64_MAX)), InvalidArgument);      // no overflow
  EXPECT_THROW(engine.submit(greedy(prompt_of(10, 1), INT64_MAX - 5)), InvalidArgument);
  EXPECT_THROW(engine.submit(greedy({1, 99999}, 10)), InvalidArgument);
  RequestParams bad = greedy(prompt_of(5, 1), 4);
  bad.sampling.temperature = -1;
  EXPECT_THROW(engine.submit(bad), InvalidArgument);
  engine.stop_accepting();
  EXPECT_THROW(engine.submit(greedy(prompt_of(5, 1), 4)), ShuttingDown);
}

// The admission is the one place a request's length and ids are checked: each refusal says why,
// with the numbers the server turns into vLLM's error.
TEST_F(EngineOnModel, RefusalsSayWhichLimitAndHonourMaxModelLen) {
  EngineConfig c = config(4);  // 64 KV tokens
  c.max_model_len = 40;
  Engine engine(*model_, c, backend_);
  EXPECT_EQ(engine.max_tokens_per_request(), 40);
  auto reason_of = [&](const RequestParams& params) {
    try {
      engine.submit(params);
    } catch (const RequestRejected& e) {
      return std::optional<RequestRejected>(e);
    }
    return std::optional<RequestRejected>();
  };
  const auto too_long = reason_of(greedy(prompt_of(40, 1), 1));
  ASSERT_TRUE(too_long);
  EXPECT_EQ(too_long->reason, RequestRejected::Reason::PromptTooLong);
  EXPECT_EQ(too_long->limit, 40);
  EXPECT_EQ(too_long->prompt_tokens, 40);
  const auto completion = reason_of(greedy(prompt_of(30, 1), 11));
  ASSERT_TRUE(completion);
  EXPECT_EQ(completion->reason, RequestRejected::Reason::CompletionTooLong);
  EXPECT_EQ(completion->max_tokens, 11);
  const auto vocabulary = reason_of(greedy({1, 99999}, 4));
  ASSERT_TRUE(vocabulary);
  EXPECT_EQ(vocabulary->reason, RequestRejected::Reason::TokenOutsideVocabulary);
  EXPECT_EQ(vocabulary->token, 99999);
  EXPECT_EQ(vocabulary->limit, model_->config.vocab_size);
  EXPECT_FALSE(reason_of(greedy(prompt_of(30, 1), 10))) << "exactly the limit is admitted";
}

TEST_F(EngineOnModel, QueueLimitIsEnforced) {
  EngineConfig c = config(256);
  c.max_queue = 2;
  Engine engine(*model_, c, backend_);
  std::vector<std::shared_ptr<RequestStream>> accepted;
  int refused = 0;
  for (int i = 0; i < 50; ++i) {
    try {
      accepted.push_back(engine.submit(greedy(prompt_of(40, i), 40)));
    } catch (const QueueFull&) {
      ++refused;
    }
  }
  EXPECT_GT(refused, 0);
  for (auto& s : accepted) EXPECT_EQ(collect(*s).finish, FinishReason::Length);
}

// Sleeps at every iteration boundary: on a model that decodes in microseconds, requests then run
// long enough for others to queue behind them for a measurable time.
class SlowIterations : public IterationHook {
 public:
  explicit SlowIterations(std::chrono::milliseconds delay) : delay_(delay) {}
  void attach(KvBlockPool&, LlamaRunner&) override {}
  void at_iteration_boundary(const PressureSignals&, KvBlockPool&, LlamaRunner&) override {
    std::this_thread::sleep_for(delay_);
  }
  bool wants_idle_ticks() const override { return false; }
  void detach(KvBlockPool&, LlamaRunner&) override {}

 private:
  std::chrono::milliseconds delay_;
};

TEST_F(EngineOnModel, QueueTimeoutDropsARequestThatWasNeverScheduled) {
  SlowIterations slow(5ms);
  EngineConfig c = config(64, 64, 1);  // one sequence at a time: the second request has to queue
  c.queue_timeout = 150ms;
  c.hook = &slow;
  Engine engine(*model_, c, backend_);
  const std::vector<int32_t> running_prompt = prompt_of(10, 1);
  auto running = engine.submit(greedy(running_prompt, 120));  // 120 iterations: 0.6 s at least
  RequestOutput first;
  ASSERT_TRUE(running->next(first, std::chrono::steady_clock::now() + 30s));
  ASSERT_EQ(first.tokens.size(), 1u);

  const auto start = std::chrono::steady_clock::now();
  auto queued = engine.submit(greedy(prompt_of(10, 2), 4));
  RequestOutput last;
  ASSERT_TRUE(queued->next(last, start + 30s));
  const auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(last.finish.has_value());
  EXPECT_EQ(*last.finish, FinishReason::QueueTimeout);
  EXPECT_NE(last.error.find("in the queue"), std::string::npos) << last.error;
  EXPECT_TRUE(last.tokens.empty());
  EXPECT_EQ(last.completion_tokens, 0);
  EXPECT_TRUE(queued->finished());
  EXPECT_GE(waited, 150ms);
  EXPECT_LT(waited, 3s);
  EXPECT_EQ(engine.metrics().request_success[static_cast<size_t>(FinishReason::QueueTimeout)].load(), 1u);

  // The running request never noticed: it runs to its end with its one-at-a-time output.
  Completion rest = collect(*running);
  EXPECT_EQ(rest.finish, FinishReason::Length);
  rest.tokens.insert(rest.tokens.begin(), first.tokens[0].token);
  EXPECT_EQ(rest.tokens, alone(running_prompt, 120));
  // And the engine keeps serving.
  EXPECT_EQ(collect(*engine.submit(greedy(prompt_of(10, 3), 4))).finish, FinishReason::Length);
  engine.shutdown(true);
  EXPECT_EQ(engine.snapshot().kv_blocks_used, 0);
  EXPECT_EQ(engine.snapshot().num_waiting, 0);
}

TEST_F(EngineOnModel, QueueTimeoutSparesPreemptedRequests) {
  // Four 20-token prompts, all admitted in the first step, growing to 80 tokens each: 12 blocks
  // of 16 tokens cannot hold them, so some are preempted back into the queue, long after the
  // timeout has passed since their arrival. They were admitted once: they must run again.
  SlowIterations slow(15ms);
  EngineConfig c = config(12, 128, 8);
  c.queue_timeout = 200ms;
  c.hook = &slow;
  Engine engine(*model_, c, backend_);
  std::vector<std::shared_ptr<RequestStream>> streams;
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 4; ++i) {
    prompts.push_back(prompt_of(20, i + 200));
    streams.push_back(engine.submit(greedy(prompts.back(), 60)));
  }
  for (size_t i = 0; i < streams.size(); ++i) {
    const Completion c = collect(*streams[i]);
    EXPECT_EQ(c.finish, FinishReason::Length) << i;
    EXPECT_EQ(c.tokens, alone(prompts[i], 60)) << i;
  }
  engine.shutdown(true);
  EXPECT_GT(engine.snapshot().num_preemptions, 0);
  EXPECT_EQ(engine.metrics().request_success[static_cast<size_t>(FinishReason::QueueTimeout)].load(), 0u);
}

TEST_F(EngineOnModel, ShutdownWithoutDrainCancelsEverything) {
  Engine engine(*model_, config(256), backend_);
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 4; ++i) streams.push_back(engine.submit(greedy(prompt_of(10, i), 2000)));
  engine.shutdown(false);
  for (auto& s : streams) EXPECT_EQ(collect(*s).finish, FinishReason::Cancelled);
}

TEST_F(EngineOnModel, LogprobsAreNormalisedAndIncludeTheChosenToken) {
  Engine engine(*model_, config(64), backend_);
  RequestParams p = greedy(prompt_of(8, 2), 3);
  p.logprobs = 5;
  auto stream = engine.submit(p);
  RequestOutput update;
  int seen = 0;
  while (stream->next(update, std::chrono::steady_clock::now() + 30s)) {
    for (const auto& t : update.tokens) {
      ++seen;
      ASSERT_EQ(t.top_logprobs.size(), 5u);
      EXPECT_EQ(t.top_logprobs[0].token, t.token);  // greedy picks the most likely
      EXPECT_FLOAT_EQ(t.top_logprobs[0].logprob, t.logprob);
      EXPECT_LE(t.logprob, 0.0f);
      for (size_t i = 1; i < 5; ++i) EXPECT_LE(t.top_logprobs[i].logprob, t.top_logprobs[i - 1].logprob);
    }
  }
  EXPECT_EQ(seen, 3);
}

TEST(EngineOnStories, StopStringsAndEosEndTheCompletion) {
  MORPHSERVE_REQUIRE_DATA(model_path, "models/stories260K.gguf");
  MORPHSERVE_REQUIRE_DATA(ref_path, "models/reference/stories260K.greedy.json");
  std::ifstream in(ref_path);
  const auto ref = nlohmann::json::parse(in);
  const auto& c = ref["cases"][1];
  ThreadPool pool(2);
  const LlamaModel model = load_model(model_path.string(), "", pool, test_backend());
  EngineConfig config;
  config.kv_type = DType::F32;
  config.kv_blocks = 64;
  Engine engine(model, config, test_backend());

  RequestParams p;
  p.prompt = c["prompt_ids"].get<std::vector<int32_t>>();
  p.max_tokens = static_cast<int64_t>(c["generated_ids"].size());
  p.ignore_eos = true;
  const std::string prompt = c["prompt"];
  const std::string continuation = c["text"].get<std::string>().substr(prompt.size());
  Completion full = collect(*engine.submit(p));
  EXPECT_EQ(full.text, continuation);
  EXPECT_EQ(full.finish, FinishReason::Length);

  p.stop = {"park"};
  Completion stopped = collect(*engine.submit(p));
  EXPECT_EQ(stopped.finish, FinishReason::Stop);
  EXPECT_EQ(stopped.text, continuation.substr(0, continuation.find("park")));
}

}  // namespace
}  // namespace morphserve
