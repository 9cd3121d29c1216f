#include "engine/scheduler.h"

#include <algorithm>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "test_backend.h"

namespace morphserve {
namespace {

constexpr int kBlockSize = 4;

KvLayout layout() { return KvLayout{1, kBlockSize, 4, DType::F32}; }

std::unique_ptr<Sequence> make_seq(uint64_t id, int n_prompt) {
  auto seq = std::make_unique<Sequence>();
  seq->id = id;
  seq->tokens.resize(static_cast<size_t>(n_prompt));
  std::iota(seq->tokens.begin(), seq->tokens.end(), 1);
  seq->num_prompt_tokens = n_prompt;
  return seq;
}

SchedulerConfig config(int64_t budget, int max_seqs = 64) { return SchedulerConfig{budget, max_seqs}; }

// One iteration as the engine runs it: schedule, "forward", then a sampled token for every chunk
// that reached the end of its sequence.
SchedulerOutput step(Scheduler& s) {
  SchedulerOutput out = s.schedule();
  s.on_step_done(out);
  for (const ScheduledChunk& c : out.chunks) {
    if (c.samples_next_token) c.seq->tokens.push_back(7);
  }
  return out;
}

void expect_chunk(const ScheduledChunk& c, const Sequence* seq, int64_t first_pos, int64_t n, bool samples) {
  EXPECT_EQ(c.seq, seq);
  EXPECT_EQ(c.first_pos, first_pos);
  EXPECT_EQ(c.n_tokens, n);
  EXPECT_EQ(c.samples_next_token, samples);
}

TEST(Scheduler, ValidatesItsConfigAndInputs) {
  KvBlockPool pool(layout(), 4, test_backend());
  EXPECT_THROW(config(0).validate(), InvalidArgument);
  EXPECT_THROW(config(8, 0).validate(), InvalidArgument);
  EXPECT_THROW(Scheduler(config(-1), pool), InvalidArgument);
  Scheduler s(config(8), pool);
  EXPECT_THROW(s.add(nullptr), InvalidArgument);
  auto empty = make_seq(1, 0);
  EXPECT_THROW(s.add(empty.get()), InvalidArgument);
  auto huge = make_seq(2, 4 * kBlockSize + 1);  // more than the whole pool
  EXPECT_THROW(s.add(huge.get()), InvalidArgument);
  EXPECT_EQ(s.num_waiting(), 0u);
  EXPECT_TRUE(s.schedule().empty());
}

TEST(Scheduler, RunsDecodesBeforeAdmittingWaitingSequences) {
  KvBlockPool pool(layout(), 16, test_backend());
  Scheduler s(config(100), pool);
  auto a = make_seq(1, 10);
  s.add(a.get());
  SchedulerOutput out = step(s);
  ASSERT_EQ(out.chunks.size(), 1u);
  expect_chunk(out.chunks[0], a.get(), 0, 10, true);
  EXPECT_EQ(a->status, SequenceStatus::Running);
  EXPECT_EQ(a->num_computed_tokens, 10);

  auto b = make_seq(2, 5);
  s.add(b.get());
  out = step(s);
  ASSERT_EQ(out.chunks.size(), 2u);
  expect_chunk(out.chunks[0], a.get(), 10, 1, true);  // the decode comes first
  expect_chunk(out.chunks[1], b.get(), 0, 5, true);
  EXPECT_EQ(out.num_batched_tokens, 6);
  EXPECT_EQ(s.running(), (std::vector<Sequence*>{a.get(), b.get()}));
}

TEST(Scheduler, SplitsTheTokenBudgetBetweenADecodeAndAChunkedPrefill) {
  KvBlockPool pool(layout(), 16, test_backend());
  Scheduler s(config(8), pool);
  auto a = make_seq(1, 3);
  s.add(a.get());
  step(s);
  auto b = make_seq(2, 20);
  s.add(b.get());
  SchedulerOutput out = step(s);
  ASSERT_EQ(out.chunks.size(), 2u);
  expect_chunk(out.chunks[0], a.get(), 3, 1, true);
  expect_chunk(out.chunks[1], b.get(), 0, 7, false);
  EXPECT_EQ(out.num_batched_tokens, 8);
  out = step(s);
  ASSERT_EQ(out.chunks.size(), 2u);
  expect_chunk(out.chunks[0], a.get(), 4, 1, true);
  expect_chunk(out.chunks[1], b.get(), 7, 7, false);
  EXPECT_EQ(b->kv.blocks.size(), 4u);  // 14 positions: blocks follow the chunks, not the prompt
}

TEST(Scheduler, PrefillsALongPromptOverSeveralSteps) {
  KvBlockPool pool(layout(), 16, test_backend());
  Scheduler s(config(6), pool);
  auto a = make_seq(1, 20);
  s.add(a.get());
  const int64_t expected[][3] = {{0, 6, 0}, {6, 6, 0}, {12, 6, 0}, {18, 2, 1}, {20, 1, 1}};
  for (const auto& e : expected) {
    const SchedulerOutput out = step(s);
    ASSERT_EQ(out.chunks.size(), 1u);
    expect_chunk(out.chunks[0], a.get(), e[0], e[1], e[2] == 1);
    EXPECT_EQ(static_cast<int64_t>(a->kv.blocks.size()), (e[0] + e[1] + kBlockSize - 1) / kBlockSize);
    EXPECT_EQ(a->kv.n_tokens, e[0] + e[1]);
  }
}

TEST(Scheduler, AdmitsNoMoreThanMaxNumSeqs) {
  KvBlockPool pool(layout(), 16, test_backend());
  Scheduler s(config(100, 2), pool);
  auto a = make_seq(1, 2), b = make_seq(2, 2), c = make_seq(3, 2);
  for (Sequence* q : {a.get(), b.get(), c.get()}) s.add(q);
  SchedulerOutput out = step(s);
  EXPECT_EQ(out.chunks.size(), 2u);
  EXPECT_EQ(s.num_running(), 2u);
  EXPECT_EQ(s.waiting().front(), c.get());
  s.finish(a.get());
  out = step(s);
  ASSERT_EQ(out.chunks.size(), 2u);
  expect_chunk(out.chunks[0], b.get(), 2, 1, true);
  expect_chunk(out.chunks[1], c.get(), 0, 2, true);
}

TEST(Scheduler, IsStrictlyFirstComeFirstServed) {
  KvBlockPool pool(layout(), 6, test_backend());
  Scheduler s(config(100), pool);
  auto a = make_seq(1, 16);  // 4 of 6 blocks
  s.add(a.get());
  step(s);
  auto big = make_seq(2, 16);   // needs 4, only 2 free
  auto small = make_seq(3, 4);  // would fit, but arrived later
  s.add(big.get());
  s.add(small.get());
  SchedulerOutput out = step(s);
  ASSERT_EQ(out.chunks.size(), 1u);
  EXPECT_EQ(out.chunks[0].seq, a.get());
  EXPECT_EQ(s.num_waiting(), 2u);
  EXPECT_EQ(small->status, SequenceStatus::Waiting);
  EXPECT_EQ(s.blocks_needed_by_waiting(), 5);
  s.finish(a.get());
  out = step(s);
  ASSERT_EQ(out.chunks.size(), 2u);
  EXPECT_EQ(out.chunks[0].seq, big.get());
  EXPECT_EQ(out.chunks[1].seq, small.get());
}

TEST(Scheduler, PreemptsTheLatestAdmittedAndResumesItByRecompute) {
  KvBlockPool pool(layout(), 4, test_backend());
  Scheduler s(config(100), pool);
  auto a = make_seq(1, 8), b = make_seq(2, 8);
  s.add(a.get());
  s.add(b.get());
  step(s);  // both prefilled, the pool is full; each now has 9 tokens
  ASSERT_EQ(pool.free_blocks(), 0);
  auto c = make_seq(3, 2);
  s.add(c.get());

  SchedulerOutput out = step(s);  // a needs a third block: b goes
  ASSERT_EQ(out.chunks.size(), 1u);
  expect_chunk(out.chunks[0], a.get(), 8, 1, true);
  EXPECT_EQ(out.preempted, (std::vector<Sequence*>{b.get()}));
  EXPECT_EQ(b->status, SequenceStatus::Waiting);
  EXPECT_EQ(b->num_computed_tokens, 0);
  EXPECT_TRUE(b->kv.blocks.empty());
  EXPECT_EQ(b->num_preemptions, 1);
  EXPECT_EQ(s.num_preemptions(), 1);
  EXPECT_EQ(s.waiting(), (std::deque<Sequence*>{b.get(), c.get()}));  // ahead of c; nobody admitted
  EXPECT_EQ(pool.used_blocks(), 3);

  s.finish(a.get());
  out = step(s);
  ASSERT_EQ(out.chunks.size(), 2u);
  expect_chunk(out.chunks[0], b.get(), 0, 9, true);  // its prompt and its generated token again
  expect_chunk(out.chunks[1], c.get(), 0, 2, true);
  EXPECT_EQ(b->num_computed_tokens, 9);
  EXPECT_EQ(b->num_generated(), 2);
}

TEST(Scheduler, PreemptsFromTheBackUntilTheSequenceFits) {
  KvBlockPool pool(layout(), 5, test_backend());
  Scheduler s(config(100), pool);
  auto a = make_seq(1, 8), b = make_seq(2, 4), c = make_seq(3, 4);
  for (Sequence* q : {a.get(), b.get(), c.get()}) s.add(q);
  step(s);  // 2 + 1 + 1 blocks; a now has 9 tokens
  a->tokens.resize(20, 7);  // as if a had been given more known tokens: it needs 3 more blocks
  const SchedulerOutput out = step(s);
  EXPECT_EQ(out.preempted, (std::vector<Sequence*>{c.get(), b.get()}));
  EXPECT_EQ(s.waiting(), (std::deque<Sequence*>{b.get(), c.get()}));  // admission order kept
  ASSERT_EQ(out.chunks.size(), 1u);
  expect_chunk(out.chunks[0], a.get(), 8, 12, true);
  EXPECT_EQ(a->kv.blocks.size(), 5u);
}

TEST(Scheduler, PreemptsTheSequenceBeingScheduledWhenItIsTheLatest) {
  KvBlockPool pool(layout(), 4, test_backend());
  Scheduler s(config(100), pool);
  auto a = make_seq(1, 6), b = make_seq(2, 8);
  s.add(a.get());
  s.add(b.get());
  step(s);  // a: 7 tokens still fit 2 blocks; b: 9 tokens need a third
  const SchedulerOutput out = step(s);
  ASSERT_EQ(out.chunks.size(), 1u);
  expect_chunk(out.chunks[0], a.get(), 6, 1, true);
  EXPECT_EQ(out.preempted, (std::vector<Sequence*>{b.get()}));
  EXPECT_EQ(s.running(), (std::vector<Sequence*>{a.get()}));
  EXPECT_EQ(b->status, SequenceStatus::Waiting);
  EXPECT_EQ(pool.used_blocks(), 2);
}

TEST(Scheduler, FinishFreesBlocksFromRunningAndWaiting) {
  KvBlockPool pool(layout(), 8, test_backend());
  Scheduler s(config(6, 1), pool);
  auto a = make_seq(1, 10), b = make_seq(2, 3);
  s.add(a.get());
  s.add(b.get());
  step(s);  // a is mid-prefill; b waits (max_num_seqs = 1)
  EXPECT_EQ(pool.used_blocks(), 2);
  s.finish(b.get());
  EXPECT_EQ(b->status, SequenceStatus::Finished);
  EXPECT_EQ(s.num_waiting(), 0u);
  s.finish(a.get());
  EXPECT_EQ(a->status, SequenceStatus::Finished);
  EXPECT_TRUE(a->kv.blocks.empty());
  EXPECT_EQ(s.num_running(), 0u);
  EXPECT_EQ(pool.used_blocks(), 0);
  EXPECT_EQ(pool.used_blocks(), 0);
  EXPECT_TRUE(s.schedule().empty());
}

TEST(Scheduler, StepDoneSkipsASequenceFinishedAfterScheduling) {
  KvBlockPool pool(layout(), 8, test_backend());
  Scheduler s(config(100), pool);
  auto a = make_seq(1, 5), b = make_seq(2, 5);
  s.add(a.get());
  s.add(b.get());
  const SchedulerOutput out = s.schedule();
  s.finish(a.get());  // cancelled while its chunk ran
  s.on_step_done(out);
  EXPECT_EQ(a->num_computed_tokens, 0);
  EXPECT_EQ(b->num_computed_tokens, 5);
}

TEST(Scheduler, CountsTheBlocksWaitingSequencesNeed) {
  KvBlockPool pool(layout(), 8, test_backend());
  Scheduler s(config(100, 1), pool);
  auto a = make_seq(1, 10), b = make_seq(2, 4);
  s.add(a.get());
  s.add(b.get());
  EXPECT_EQ(s.blocks_needed_by_waiting(), 3 + 1);
  step(s);
  EXPECT_EQ(s.blocks_needed_by_waiting(), 1);
}

// Random arrivals, prompt and output lengths, budgets and cancellations against a small pool:
// after every step the blocks are conserved and every chunk is consistent, and every request
// completes (preemption by recompute never drops one).
void simulate(uint32_t seed, int64_t* total_preemptions) {
  std::mt19937 rng(seed);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  constexpr int kBlocks = 24;
  KvBlockPool pool(layout(), kBlocks, test_backend());
  const SchedulerConfig cfg = config(uniform(8, 48), uniform(2, 8));
  Scheduler s(cfg, pool);
  struct Request {
    std::unique_ptr<Sequence> seq;
    int max_new = 0;
    bool done = false;
  };
  std::vector<Request> requests;
  constexpr int kRequests = 120;
  int completed = 0;
  for (int iteration = 0; completed < kRequests; ++iteration) {
    ASSERT_LT(iteration, 20000) << "requests did not complete";
    if (static_cast<int>(requests.size()) < kRequests && uniform(0, 2) == 0) {
      const int prompt = uniform(1, 40);
      const int max_new = uniform(1, kBlocks * kBlockSize - prompt);
      requests.push_back({make_seq(requests.size() + 1, prompt), std::min(max_new, uniform(1, 30)), false});
      s.add(requests.back().seq.get());
    }
    const SchedulerOutput out = s.schedule();
    int64_t tokens = 0;
    for (const ScheduledChunk& c : out.chunks) {
      ASSERT_EQ(c.seq->status, SequenceStatus::Running);
      ASSERT_EQ(c.first_pos, c.seq->num_computed_tokens);
      ASSERT_GT(c.n_tokens, 0);
      ASSERT_EQ(c.samples_next_token, c.first_pos + c.n_tokens == c.seq->num_tokens());
      ASSERT_GE(static_cast<int64_t>(c.seq->kv.blocks.size()) * kBlockSize, c.first_pos + c.n_tokens);
      ASSERT_EQ(std::count(out.preempted.begin(), out.preempted.end(), c.seq), 0);
      tokens += c.n_tokens;
    }
    ASSERT_EQ(tokens, out.num_batched_tokens);
    ASSERT_LE(tokens, cfg.max_num_batched_tokens);
    ASSERT_LE(s.num_running(), static_cast<size_t>(cfg.max_num_seqs));
    s.on_step_done(out);
    for (const ScheduledChunk& c : out.chunks) {
      if (c.samples_next_token) c.seq->tokens.push_back(uniform(0, 100));
    }
    for (Request& r : requests) {
      if (r.done) continue;
      const bool cancelled = uniform(0, 400) == 0;
      if (cancelled || r.seq->num_generated() >= r.max_new) {
        s.finish(r.seq.get());
        r.done = true;
        ++completed;
      }
    }
    // Conservation: the running sequences hold every used block; waiting ones hold none.
    int64_t held = 0;
    for (const Sequence* q : s.running()) held += static_cast<int64_t>(q->kv.blocks.size());
    for (const Sequence* q : s.waiting()) ASSERT_TRUE(q->kv.blocks.empty());
    ASSERT_EQ(held, pool.used_blocks());
    ASSERT_EQ(pool.used_blocks() + pool.free_blocks(), pool.capacity_blocks());
  }
  EXPECT_EQ(s.num_running() + s.num_waiting(), 0u);
  EXPECT_EQ(pool.used_blocks(), 0);
  *total_preemptions += s.num_preemptions();
}

TEST(Scheduler, RandomizedSimulationConservesBlocksAndCompletesEveryRequest) {
  int64_t preemptions = 0;
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    simulate(seed, &preemptions);
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(preemptions, 0);  // the simulation does exercise preemption
}

}  // namespace
}  // namespace morphserve
