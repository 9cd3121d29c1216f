#pragma once
// A request as the scheduler sees it: its tokens, how many of them are in the KV cache, and the
// blocks holding them. Text, sampling and streaming live with the engine, not here, so every
// scheduling decision can be tested without a model.
#include <cstdint>
#include <vector>

#include "engine/kv_block_pool.h"

namespace morphserve {

enum class SequenceStatus { Waiting, Running, Finished };

struct Sequence {
  uint64_t id = 0;
  std::vector<int32_t> tokens;      // prompt followed by every generated token
  int64_t num_prompt_tokens = 0;
  int64_t num_computed_tokens = 0;  // tokens [0, num_computed_tokens) have K/V in the cache
  SequenceKv kv;
  SequenceStatus status = SequenceStatus::Waiting;
  int64_t num_preemptions = 0;

  int64_t num_tokens() const { return static_cast<int64_t>(tokens.size()); }
  int64_t num_generated() const { return num_tokens() - num_prompt_tokens; }
};

}  // namespace morphserve
