#include "engine/memory_plan.h"

#include <fmt/format.h>

#include "core/error.h"
#include "core/units.h"

namespace morphserve {

std::string MemoryPlan::describe() const {
  return fmt::format("memory budget {}: weights {}, workspace {}, KV cache {} = {} blocks = {} tokens",
                     format_size(budget_bytes), format_size(weight_bytes), format_size(workspace_bytes),
                     format_size(kv_bytes), kv_blocks, kv_tokens);
}

MemoryPlan plan_memory(size_t budget_bytes, size_t weight_bytes, size_t workspace_bytes, const KvLayout& layout,
                       int64_t min_kv_tokens) {
  MemoryPlan plan;
  plan.budget_bytes = budget_bytes;
  plan.weight_bytes = weight_bytes;
  plan.workspace_bytes = workspace_bytes;
  const size_t fixed = weight_bytes + workspace_bytes;
  const size_t left = budget_bytes > fixed ? budget_bytes - fixed : 0;
  plan.kv_blocks = static_cast<int64_t>(left / layout.block_bytes());
  plan.kv_bytes = static_cast<size_t>(plan.kv_blocks) * layout.block_bytes();
  plan.kv_tokens = plan.kv_blocks * layout.block_size;
  if (plan.kv_tokens < min_kv_tokens || plan.kv_blocks == 0) {
    const size_t needed = fixed + static_cast<size_t>((min_kv_tokens + layout.block_size - 1) / layout.block_size) *
                                      layout.block_bytes();
    fail<OutOfBudget>("memory budget {} is too small: weights take {} and the workspace {}, leaving room for {} KV "
                      "tokens; at least {} are needed (a budget of {} would do)",
                      format_size(budget_bytes), format_size(weight_bytes), format_size(workspace_bytes),
                      plan.kv_tokens, min_kv_tokens, format_size(needed));
  }
  return plan;
}

}  // namespace morphserve
