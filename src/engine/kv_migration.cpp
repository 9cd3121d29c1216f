// Migration between KV segments (DESIGN.md §4: restoring a layer drains its segment without
// dropping or recomputing anything). A block keeps its id: only the id's slot changes, so block
// tables are never touched.

#include "core/error.h"
#include "engine/kv_block_pool.h"

namespace morphserve {

KvBlockPool::Segment* KvBlockPool::migration_target(int source_segment) {
  // Same preference as allocate(): the base first, so blocks leave the attached segments.
  for (Segment& s : segments_) {
    if (s.id != source_segment && s.allocating && !s.free_slots.empty()) return &s;
  }
  return nullptr;
}

void KvBlockPool::move_block(int32_t block, Segment& source, Segment& target) {
  const int32_t slot = target.free_slots.back();
  target.free_slots.pop_back();
  target.owner[static_cast<size_t>(slot)] = block;
  ++target.n_used;
  --free_allocatable_;
  BlockState& state = blocks_[static_cast<size_t>(block)];
  std::byte* to = target.base + layout_.block_bytes() * static_cast<size_t>(slot);
  backend_.copy_within_now(to, state.data, layout_.block_bytes());
  free_slot(source, state.slot);  // the live block count does not change
  state.data = to;
  state.segment = target.id;
  state.slot = slot;
}

bool KvBlockPool::migrate(int32_t block) {
  const BlockState& state = allocated_state(block);
  Segment& source = find_segment(state.segment);
  Segment* target = migration_target(source.id);
  if (!target) return false;
  move_block(block, source, *target);
  return true;
}

int64_t KvBlockPool::migrate_segment(int segment) {
  Segment& source = find_segment(segment);
  for (int32_t slot = 0; slot < source.n_blocks && source.n_used > 0; ++slot) {
    const int32_t block = source.owner[static_cast<size_t>(slot)];
    if (block < 0) continue;
    Segment* target = migration_target(segment);
    if (!target) break;
    move_block(block, source, *target);
  }
  return source.n_used;
}

}  // namespace morphserve
