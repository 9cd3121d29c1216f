#pragma once
// How --memory-budget is spent (DESIGN.md §4): resident weights first, then the runner's
// workspace at its largest batch, and whatever is left becomes the base KV segment.
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/kv_block_pool.h"

namespace morphserve {

struct MemoryPlan {
  size_t budget_bytes = 0;
  size_t weight_bytes = 0;
  size_t workspace_bytes = 0;
  size_t kv_bytes = 0;       // kv_blocks * block_bytes
  int64_t kv_blocks = 0;
  int64_t kv_tokens = 0;     // kv_blocks * block_size

  std::string describe() const;  // one line for the start-up log
};

// Throws OutOfBudget with the numbers when the budget cannot hold the weights, the workspace
// and at least min_kv_tokens of KV.
MemoryPlan plan_memory(size_t budget_bytes, size_t weight_bytes, size_t workspace_bytes, const KvLayout& layout,
                       int64_t min_kv_tokens);

}  // namespace morphserve
