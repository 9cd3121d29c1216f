// Migration between KV segments and the registry of block tables it repoints (DESIGN.md §4:
// restoring a layer drains its segment without dropping or recomputing anything).
#include <cstring>

#include "core/error.h"
#include "engine/kv_block_pool.h"

namespace morphserve {

KvBlockPool::Segment* KvBlockPool::migration_target(int source_segment) {
  // Same preference as allocate(): the base first, so blocks leave the attached segments.
  for (Segment& s : segments_) {
    if (s.id != source_segment && s.allocating && !s.free_list.empty()) return &s;
  }
  return nullptr;
}

int32_t KvBlockPool::move_block(int32_t block, Segment& source, Segment& target) {
  const int32_t moved = target.free_list.back();
  target.free_list.pop_back();
  ++target.n_used;
  --free_allocatable_;
  BlockState& from = blocks_[static_cast<size_t>(block)];
  BlockState& to = blocks_[static_cast<size_t>(moved)];
  std::memcpy(to.data, from.data, layout_.block_bytes());
  to.refcount = from.refcount;
  ++used_;  // free_block below takes it back: the live block count does not change
  free_block(block, source);
  return moved;
}

int32_t KvBlockPool::migrate(int32_t block) {
  const BlockState& state = allocated_state(block);
  Segment& source = find_segment(state.segment);
  Segment* target = migration_target(source.id);
  if (!target) return -1;
  const int32_t moved = move_block(block, source, *target);
  for (SequenceKv* table : tables_) {
    for (int32_t& entry : table->blocks) {
      if (entry == block) entry = moved;
    }
  }
  return moved;
}

int64_t KvBlockPool::migrate_segment(int segment) {
  Segment& source = find_segment(segment);
  // remap[i]: the new id of the source's i-th block, or -1 where it stayed.
  std::vector<int32_t> remap(static_cast<size_t>(source.n_blocks), -1);
  bool any = false;
  for (int32_t i = 0; i < source.n_blocks && source.n_used > 0; ++i) {
    const int32_t block = source.first_block + i;
    if (blocks_[static_cast<size_t>(block)].refcount == 0) continue;
    Segment* target = migration_target(segment);
    if (!target) break;
    remap[static_cast<size_t>(i)] = move_block(block, source, *target);
    any = true;
  }
  if (any) {
    const int32_t first = source.first_block;
    const int32_t end = first + source.n_blocks;
    for (SequenceKv* table : tables_) {
      for (int32_t& entry : table->blocks) {
        if (entry >= first && entry < end && remap[static_cast<size_t>(entry - first)] >= 0) {
          entry = remap[static_cast<size_t>(entry - first)];
        }
      }
    }
  }
  return source.n_used;
}

void KvBlockPool::register_table(SequenceKv* table) {
  table->pool_ = this;
  table->table_slot_ = tables_.size();
  tables_.push_back(table);
}

void KvBlockPool::unregister_table(SequenceKv* table) {
  const size_t slot = table->table_slot_;
  tables_[slot] = tables_.back();
  tables_[slot]->table_slot_ = slot;
  tables_.pop_back();
  table->pool_ = nullptr;
}

void KvBlockPool::move_table(SequenceKv* from, SequenceKv* to) {
  tables_[from->table_slot_] = to;
  to->table_slot_ = from->table_slot_;
  to->pool_ = this;
  from->pool_ = nullptr;
}

}  // namespace morphserve
