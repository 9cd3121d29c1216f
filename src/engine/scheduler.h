#pragma once
// Continuous batching in the style of vLLM's V1 scheduler: there are no prefill and decode
// phases, only sequences whose computed tokens trail their known tokens. Each step hands out a
// token budget: running sequences first (a decode token each, or the next prefill chunk), then
// waiting ones in arrival order (chunked prefill), all under --max-num-batched-tokens and
// --max-num-seqs. When blocks run out, the most recently admitted running sequence is preempted
// by recompute: its blocks are freed and it goes back to the front of the queue, never dropped.
#include <cstdint>
#include <deque>
#include <vector>

#include "engine/kv_block_pool.h"
#include "engine/sequence.h"

namespace morphserve {

struct SchedulerConfig {
  int64_t max_num_batched_tokens = 512;  // tokens per forward pass
  int max_num_seqs = 64;                 // sequences per forward pass
  void validate() const;                 // throws InvalidArgument
};

struct ScheduledChunk {
  Sequence* seq = nullptr;
  int64_t first_pos = 0;   // == seq->num_computed_tokens when scheduled
  int64_t n_tokens = 0;    // tokens [first_pos, first_pos + n_tokens) are computed this step
  // True when the chunk reaches the end of the known tokens, so its last logits give the next token.
  bool samples_next_token = false;
};

struct SchedulerOutput {
  std::vector<ScheduledChunk> chunks;  // running sequences first, then newly admitted ones
  std::vector<Sequence*> preempted;    // sent back to waiting during this step (blocks freed)
  int64_t num_batched_tokens = 0;
  bool empty() const { return chunks.empty(); }
};

class Scheduler {
 public:
  Scheduler(const SchedulerConfig& config, KvBlockPool& pool);

  // Queues a sequence (not owned; it must outlive its time in the scheduler).
  void add(Sequence* seq);
  // Decides the next step and allocates the blocks it needs.
  SchedulerOutput schedule();
  // After the forward pass: every scheduled chunk's tokens are now computed.
  void on_step_done(const SchedulerOutput& output);
  // Removes a sequence wherever it is (finished, cancelled, failed) and frees its blocks.
  void finish(Sequence* seq);

  size_t num_running() const { return running_.size(); }
  size_t num_waiting() const { return waiting_.size(); }
  int64_t num_preemptions() const { return num_preemptions_; }
  const std::deque<Sequence*>& waiting() const { return waiting_; }
  const std::vector<Sequence*>& running() const { return running_; }
  // Blocks the waiting queue would need to hold all of its known tokens (a pressure signal).
  int64_t blocks_needed_by_waiting() const;

 private:
  void preempt(Sequence* seq, SchedulerOutput& output);

  SchedulerConfig config_;
  KvBlockPool& pool_;
  std::vector<Sequence*> running_;  // in admission order: the back is preempted first
  std::deque<Sequence*> waiting_;
  int64_t num_preemptions_ = 0;
};

}  // namespace morphserve
