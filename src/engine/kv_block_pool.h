#pragma once
// Paged KV cache storage: fixed-size blocks, each holding K and V of block_size tokens for every
// layer. Sequences own lists of block ids (block tables, SequenceKv); attention reads through
// them, so blocks need not be contiguous (DESIGN.md §4).
//
// The pool is a list of segments. The base segment is the pool's own buffer, allocated through
// the backend against the "kv base" account; more segments are
// attached at runtime over memory the pool does not own (the tail of a swapped-down layer's
// region) and detached again once empty. Restoring a layer drains its segment: it stops
// allocating from it and migrates its live blocks elsewhere.
//
// Accounting (all runtime values, changing with the segments):
//   capacity_blocks()      blocks of every attached segment, draining ones included
//   used_blocks()          blocks with a reference count above zero
//   free_blocks()          free blocks allocate() can hand out (in allocating segments only)
//   draining_free_blocks() free blocks of draining segments: neither used nor allocatable
//   used + free + draining_free == capacity, always.
//
// Block ids are logical and stable for a block's whole life: an id maps to a physical slot (a
// segment and an index in it), and migration copies the bytes to a slot elsewhere and repoints
// that one mapping, so no block table ever changes. Free ids are reused lowest first, so the id
// space, and the per-id state, stays as large as the most blocks ever live at once, across any
// number of swap cycles. Segment ids are never reused, so a stale segment id fails loudly instead
// of naming another segment.
//
// Allocation order: the base segment first, then attached segments from the oldest to the newest.
// Layers are restored in the reverse order they were swapped, so the newest segment, the next to
// be drained, holds the fewest live blocks. Within a segment the lowest free slot goes first
// (then the most recently freed).
//
// Not thread-safe: the engine thread is the only writer (DESIGN.md §3). Migration moves bytes, so
// it may only run between forward passes, when nobody holds a k_data/v_data pointer.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <string_view>
#include <utility>
#include <vector>

#include "backend/backend.h"
#include "core/dtype.h"

namespace morphserve {

struct KvLayout {
  int n_layers = 0;
  int block_size = 16;  // tokens per block
  int kv_dim = 0;       // n_kv_heads * head_dim
  DType type = DType::F16;  // F16 or F32

  size_t element_bytes() const { return type == DType::F32 ? 4 : 2; }
  // K (or V) of one layer in one block.
  size_t half_layer_bytes() const { return static_cast<size_t>(block_size) * kv_dim * element_bytes(); }
  size_t block_bytes() const { return 2 * half_layer_bytes() * static_cast<size_t>(n_layers); }
  // Validates the layout; throws InvalidArgument.
  void validate() const;
};

struct SequenceKv;

class KvBlockPool {
 public:
  static constexpr int kBaseSegment = 0;

  // The base segment: n_blocks blocks in a buffer the pool owns.
  // The base segment of n_blocks is allocated from `backend` (OutOfBudget when it does not fit);
  // migration copies through it too. The backend must outlive the pool.
  KvBlockPool(const KvLayout& layout, int64_t n_blocks, Backend& backend);
  static constexpr std::string_view kBaseAccount = "kv base";
  // Block tables still holding blocks forget the pool (they keep their ids, which no longer mean anything).
  ~KvBlockPool();
  // Block tables point back at their pool.
  KvBlockPool(const KvBlockPool&) = delete;
  KvBlockPool& operator=(const KvBlockPool&) = delete;

  const KvLayout& layout() const { return layout_; }
  int64_t capacity_blocks() const { return capacity_; }
  int64_t free_blocks() const { return free_allocatable_; }
  int64_t used_blocks() const { return used_; }
  int64_t draining_free_blocks() const { return capacity_ - used_ - free_allocatable_; }
  // Bytes of every attached segment's blocks.
  size_t bytes() const { return static_cast<size_t>(capacity_) * layout_.block_bytes(); }
  // Bytes the pool allocated itself (the base segment); attached memory is its owner's to account.
  size_t owned_bytes() const { return storage_.size(); }

  // Returns a free block with reference count 1, or -1 when no allocating segment has one.
  int32_t allocate();
  // One more holder of an allocated block (a forked sequence sharing its prefix).
  void retain(int32_t block);
  // One holder fewer; the block is free again at zero. Throws InvalidArgument for a free block.
  void release(int32_t block);
  // 0 for a free id. Throws InvalidArgument for an id the pool never handed out.
  int32_t refcount(int32_t block) const;

  std::byte* k_data(int32_t block, int layer);
  std::byte* v_data(int32_t block, int layer) { return k_data(block, layer) + layout_.half_layer_bytes(); }

  // Attaches memory the pool does not own (it must outlive the segment): the first 64-byte
  // aligned address onwards is carved into whole blocks, allocatable at once. Returns the
  // segment id. Throws InvalidArgument when not one block fits.
  int add_segment(std::byte* memory, size_t bytes);
  // Draining: no new allocations from the segment; its free blocks leave free_blocks().
  void stop_allocating(int segment);
  // Undoes stop_allocating (a restore abandoned because pressure came back).
  void resume_allocating(int segment);
  bool is_allocating(int segment) const;
  bool segment_empty(int segment) const { return segment_used_blocks(segment) == 0; }
  int64_t segment_blocks(int segment) const;
  int64_t segment_used_blocks(int segment) const;
  // Detaches an empty segment: its blocks leave the capacity. Throws InvalidArgument while it
  // still holds a live block, or for the base segment (the pool's own memory).
  void remove_segment(int segment);
  // Attached segments in allocation order (the base first).
  std::vector<int> segment_ids() const;
  // The segment an allocated block lives in now. Throws InvalidArgument for a free id.
  int segment_of(int32_t block) const;
  // Ids the pool has handed out at some point: the size of its per-id state (tests check it stays
  // bounded).
  size_t id_space() const { return blocks_.size(); }

  // Copies an allocated block (K and V of every layer) into a free slot of another allocating
  // segment and repoints its id there; the id, and so every block table holding it, stays as it
  // was. Returns false when no other segment has a free slot (nothing changes; the caller retries
  // later). Only between forward passes.
  bool migrate(int32_t block);
  // Migrates as many live blocks out of a segment (normally a draining one) as free slots
  // elsewhere allow. Returns how many live blocks remain.
  int64_t migrate_segment(int segment);

 private:
  friend struct SequenceKv;

  struct BlockState {           // by block id
    std::byte* data = nullptr;  // the block's first byte; null while the id is free
    int segment = -1;
    int32_t slot = -1;          // index in the segment
    int32_t refcount = 0;
  };
  struct Segment {
    int id = 0;
    std::byte* base = nullptr;  // slot i starts at base + i * block_bytes
    int32_t n_blocks = 0;
    int32_t n_used = 0;
    bool allocating = true;
    std::vector<int32_t> free_slots;  // the next slot to hand out is at the back
    std::vector<int32_t> owner;       // slot -> the block id living there, or -1
  };

  Segment& find_segment(int id);
  const Segment& find_segment(int id) const;
  const BlockState& allocated_state(int32_t block) const;  // throws unless refcount > 0
  Segment* migration_target(int source_segment);
  // Moves one block's bytes into a free slot of target and repoints its id.
  void move_block(int32_t block, Segment& source, Segment& target);
  // Binds a free slot of `segment` to a fresh id with reference count 1.
  int32_t take_slot(Segment& segment);
  void free_slot(Segment& segment, int32_t slot);
  void free_block(int32_t block, Segment& segment);

  KvLayout layout_;
  Backend& backend_;
  ResidentBuffer storage_;          // the base segment
  std::vector<Segment> segments_;   // in allocation order
  std::vector<BlockState> blocks_;  // indexed by block id
  std::priority_queue<int32_t, std::vector<int32_t>, std::greater<>> free_ids_;  // lowest first
  // Block tables hold this while they hold blocks; the pool clears it when it goes, so a table
  // that outlives its pool knows (single-threaded, like everything here).
  std::shared_ptr<KvBlockPool*> self_ = std::make_shared<KvBlockPool*>(this);
  int next_segment_id_ = kBaseSegment + 1;
  int64_t capacity_ = 0;
  int64_t used_ = 0;
  int64_t free_allocatable_ = 0;
};

// The blocks one sequence holds (their ids never change, even when migration moves their bytes)
// and how many token positions are written. Movable but not copyable (use fork, which takes
// references). Destroying a table that still holds blocks releases them; a table that outlives
// its pool just forgets it.
struct SequenceKv {
  std::vector<int32_t> blocks;
  int64_t n_tokens = 0;  // positions [0, n_tokens) are written

  SequenceKv() = default;
  SequenceKv(SequenceKv&& other) noexcept;
  SequenceKv& operator=(SequenceKv&& other);
  SequenceKv(const SequenceKv&) = delete;
  SequenceKv& operator=(const SequenceKv&) = delete;
  ~SequenceKv();

  // Allocates blocks until positions [0, n_positions) fit; returns false (allocating nothing
  // more) when the pool runs out.
  bool reserve(KvBlockPool& pool, int64_t n_positions);
  void release_all(KvBlockPool& pool);
  // A second table sharing every block (each retained once more): a forked request. Whoever
  // writes into a shared, partly filled last block must copy it first.
  SequenceKv fork(KvBlockPool& pool) const;
  // The live pool whose blocks this table holds, or null (no blocks, or the pool is gone).
  KvBlockPool* pool() const { return pool_ ? *pool_ : nullptr; }

 private:
  void check_pool(const KvBlockPool& pool) const;

  std::shared_ptr<KvBlockPool*> pool_;  // the pool's self_, while holding blocks
};

}  // namespace morphserve
