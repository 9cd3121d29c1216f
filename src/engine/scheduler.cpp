#include "engine/scheduler.h"

#include <algorithm>

#include "core/error.h"

namespace morphserve {

void SchedulerConfig::validate() const {
  if (max_num_batched_tokens <= 0) {
    fail<InvalidArgument>("--max-num-batched-tokens must be positive, got {}", max_num_batched_tokens);
  }
  if (max_num_seqs <= 0) fail<InvalidArgument>("--max-num-seqs must be positive, got {}", max_num_seqs);
}

Scheduler::Scheduler(const SchedulerConfig& config, KvBlockPool& pool) : config_(config), pool_(pool) {
  config_.validate();
}

void Scheduler::add(Sequence* seq) {
  if (!seq) fail<InvalidArgument>("cannot schedule a null sequence");
  if (seq->num_computed_tokens < 0 || seq->num_computed_tokens >= seq->num_tokens()) {
    fail<InvalidArgument>("sequence {} has {} tokens, {} computed: nothing left to compute", seq->id,
                          seq->num_tokens(), seq->num_computed_tokens);
  }
  // A sequence larger than the whole pool would preempt everything, itself included, forever.
  const int64_t bs = pool_.layout().block_size;
  const int64_t blocks = (seq->num_tokens() + bs - 1) / bs;
  if (blocks > pool_.capacity_blocks()) {
    fail<InvalidArgument>("sequence {} needs {} KV blocks, more than the pool's {}", seq->id, blocks,
                          pool_.capacity_blocks());
  }
  seq->status = SequenceStatus::Waiting;
  waiting_.push_back(seq);
}

void Scheduler::preempt(Sequence* seq, SchedulerOutput& output) {
  // Recompute, not swap: the blocks go back to the pool and the sequence starts over from its
  // prompt plus everything it generated so far, ahead of every other waiting request.
  seq->kv.release_all(pool_);
  seq->num_computed_tokens = 0;
  seq->status = SequenceStatus::Waiting;
  ++seq->num_preemptions;
  ++num_preemptions_;
  waiting_.push_front(seq);
  output.preempted.push_back(seq);
}

SchedulerOutput Scheduler::schedule() {
  SchedulerOutput out;
  int64_t budget = config_.max_num_batched_tokens;
  auto add_chunk = [&](Sequence* seq, int64_t n) {
    out.chunks.push_back({seq, seq->num_computed_tokens, n, seq->num_computed_tokens + n == seq->num_tokens()});
    out.num_batched_tokens += n;
    budget -= n;
  };

  // Running sequences first, in admission order. Everything behind index i is not yet scheduled
  // this step, so a preempted sequence (always the back) never has a chunk in the output.
  for (size_t i = 0; i < running_.size() && budget > 0; ++i) {
    Sequence* seq = running_[i];
    const int64_t n = std::min(seq->num_tokens() - seq->num_computed_tokens, budget);
    if (n <= 0) continue;
    bool reserved = false;
    while (!(reserved = seq->kv.reserve(pool_, seq->num_computed_tokens + n))) {
      Sequence* victim = running_.back();
      running_.pop_back();
      preempt(victim, out);
      if (victim == seq) break;
    }
    if (!reserved) break;  // it preempted itself: nobody behind it is left to schedule
    add_chunk(seq, n);
  }

  // Then waiting ones, strictly first come first served, unless this step had to preempt (the
  // pool is short: admitting more would only preempt again).
  if (out.preempted.empty()) {
    while (!waiting_.empty() && budget > 0 && running_.size() < static_cast<size_t>(config_.max_num_seqs)) {
      Sequence* seq = waiting_.front();
      const int64_t n = std::min(seq->num_tokens() - seq->num_computed_tokens, budget);
      if (!seq->kv.reserve(pool_, seq->num_computed_tokens + n)) break;
      waiting_.pop_front();
      seq->status = SequenceStatus::Running;
      running_.push_back(seq);
      add_chunk(seq, n);
    }
  }
  return out;
}

void Scheduler::on_step_done(const SchedulerOutput& output) {
  for (const ScheduledChunk& chunk : output.chunks) {
    Sequence* seq = chunk.seq;
    // Finished (cancelled, failed) between schedule() and now: nothing to advance.
    if (seq->status != SequenceStatus::Running) continue;
    if (seq->num_computed_tokens != chunk.first_pos) {
      fail<InvalidArgument>("sequence {} has {} computed tokens but its chunk started at {}", seq->id,
                            seq->num_computed_tokens, chunk.first_pos);
    }
    seq->num_computed_tokens += chunk.n_tokens;
    seq->kv.n_tokens = seq->num_computed_tokens;
  }
}

void Scheduler::finish(Sequence* seq) {
  if (auto it = std::find(running_.begin(), running_.end(), seq); it != running_.end()) {
    running_.erase(it);  // keeps admission order for the ones behind it
  } else if (auto w = std::find(waiting_.begin(), waiting_.end(), seq); w != waiting_.end()) {
    waiting_.erase(w);
  }
  seq->kv.release_all(pool_);
  seq->status = SequenceStatus::Finished;
}

int64_t Scheduler::blocks_needed_by_waiting() const {
  const int64_t bs = pool_.layout().block_size;
  int64_t needed = 0;
  for (const Sequence* seq : waiting_) {
    needed += std::max<int64_t>(0, (seq->num_tokens() + bs - 1) / bs - static_cast<int64_t>(seq->kv.blocks.size()));
  }
  return needed;
}

}  // namespace morphserve
