#include "engine/kv_block_pool.h"

#include <algorithm>
#include <cassert>
#include <limits>

#include "core/error.h"

namespace morphserve {

void KvLayout::validate() const {
  if (n_layers <= 0 || kv_dim <= 0) fail<InvalidArgument>("KV layout needs layers and a positive kv width");
  if (block_size <= 0) fail<InvalidArgument>("KV block size must be positive, got {}", block_size);
  if (type != DType::F16 && type != DType::F32) {
    fail<InvalidArgument>("KV cache type must be f16 or f32, not {}", dtype_name(type));
  }
}

namespace {

constexpr int64_t kMaxBlockIds = std::numeric_limits<int32_t>::max();

// Lowest slots are handed out first: easier to read in logs and tests.
void fill_free_slots(std::vector<int32_t>& free_slots, int32_t n) {
  free_slots.clear();
  free_slots.reserve(static_cast<size_t>(n));
  for (int32_t i = n - 1; i >= 0; --i) free_slots.push_back(i);
}

}  // namespace

KvBlockPool::KvBlockPool(const KvLayout& layout, int64_t n_blocks, Backend& backend)
    : layout_(layout), backend_(backend) {
  layout_.validate();
  if (n_blocks <= 0) fail<InvalidArgument>("the KV pool needs at least one block, got {}", n_blocks);
  if (n_blocks > kMaxBlockIds) fail<InvalidArgument>("{} KV blocks are more than block ids can name", n_blocks);
  storage_ = backend_.allocate(kBaseAccount, layout_.block_bytes() * static_cast<size_t>(n_blocks));
  const auto n = static_cast<int32_t>(n_blocks);
  Segment base;
  base.id = kBaseSegment;
  base.base = storage_.data();
  base.n_blocks = n;
  fill_free_slots(base.free_slots, n);
  base.owner.assign(static_cast<size_t>(n), -1);
  segments_.push_back(std::move(base));
  capacity_ = n;
  free_allocatable_ = n;
}

KvBlockPool::~KvBlockPool() { *self_ = nullptr; }

int32_t KvBlockPool::take_slot(Segment& s) {
  const int32_t slot = s.free_slots.back();
  s.free_slots.pop_back();
  int32_t id;
  if (!free_ids_.empty()) {
    id = free_ids_.top();
    free_ids_.pop();
  } else {
    if (static_cast<int64_t>(blocks_.size()) >= kMaxBlockIds) fail<InvalidArgument>("KV block ids are exhausted");
    id = static_cast<int32_t>(blocks_.size());
    blocks_.emplace_back();
  }
  blocks_[static_cast<size_t>(id)] = {s.base + layout_.block_bytes() * static_cast<size_t>(slot), s.id, slot, 1};
  s.owner[static_cast<size_t>(slot)] = id;
  ++s.n_used;
  --free_allocatable_;
  return id;
}

int32_t KvBlockPool::allocate() {
  for (Segment& s : segments_) {
    if (s.allocating && !s.free_slots.empty()) {
      const int32_t block = take_slot(s);
      ++used_;
      return block;
    }
  }
  return -1;
}

const KvBlockPool::BlockState& KvBlockPool::allocated_state(int32_t block) const {
  if (block < 0 || static_cast<size_t>(block) >= blocks_.size() || blocks_[static_cast<size_t>(block)].refcount <= 0) {
    fail<InvalidArgument>("KV block {} is not allocated", block);
  }
  return blocks_[static_cast<size_t>(block)];
}

void KvBlockPool::retain(int32_t block) {
  allocated_state(block);
  ++blocks_[static_cast<size_t>(block)].refcount;
}

void KvBlockPool::release(int32_t block) {
  const BlockState& state = allocated_state(block);
  if (--blocks_[static_cast<size_t>(block)].refcount == 0) free_block(block, find_segment(state.segment));
}

void KvBlockPool::free_slot(Segment& segment, int32_t slot) {
  segment.free_slots.push_back(slot);
  segment.owner[static_cast<size_t>(slot)] = -1;
  --segment.n_used;
  if (segment.allocating) ++free_allocatable_;
}

void KvBlockPool::free_block(int32_t block, Segment& segment) {
  free_slot(segment, blocks_[static_cast<size_t>(block)].slot);
  blocks_[static_cast<size_t>(block)] = BlockState{};
  free_ids_.push(block);
  --used_;
}

int32_t KvBlockPool::refcount(int32_t block) const {
  if (block < 0 || static_cast<size_t>(block) >= blocks_.size()) {
    fail<InvalidArgument>("KV block id {} was never handed out by this pool", block);
  }
  return blocks_[static_cast<size_t>(block)].refcount;
}

std::byte* KvBlockPool::k_data(int32_t block, int layer) {
  // Unchecked: attention asks for every block of every layer; tables only hold live ids.
  assert(block >= 0 && static_cast<size_t>(block) < blocks_.size() && blocks_[static_cast<size_t>(block)].data);
  return blocks_[static_cast<size_t>(block)].data + layout_.half_layer_bytes() * 2 * static_cast<size_t>(layer);
}

KvBlockPool::Segment& KvBlockPool::find_segment(int id) {
  return const_cast<Segment&>(std::as_const(*this).find_segment(id));
}

const KvBlockPool::Segment& KvBlockPool::find_segment(int id) const {
  // A handful of segments (one per swapped layer): a scan is as fast as any index.
  for (const Segment& s : segments_) {
    if (s.id == id) return s;
  }
  fail<InvalidArgument>("KV segment {} is not attached", id);
}

int KvBlockPool::add_segment(std::byte* memory, size_t bytes) {
  if (!memory) fail<InvalidArgument>("a KV segment needs memory");
  const auto address = reinterpret_cast<uintptr_t>(memory);
  const size_t skip = (Backend::kAlignment - address % Backend::kAlignment) % Backend::kAlignment;
  const size_t usable = bytes > skip ? bytes - skip : 0;
  const size_t n_blocks = usable / layout_.block_bytes();
  if (n_blocks == 0) {
    fail<InvalidArgument>("a KV segment of {} bytes holds no whole block of {} bytes", bytes, layout_.block_bytes());
  }
  if (static_cast<int64_t>(n_blocks) > kMaxBlockIds - capacity_) {
    fail<InvalidArgument>("a KV segment of {} blocks is too large", n_blocks);
  }
  const auto n = static_cast<int32_t>(n_blocks);
  Segment s;
  s.id = next_segment_id_++;
  s.base = memory + skip;
  s.n_blocks = n;
  fill_free_slots(s.free_slots, n);
  s.owner.assign(static_cast<size_t>(n), -1);
  segments_.push_back(std::move(s));
  capacity_ += n;
  free_allocatable_ += n;
  return segments_.back().id;
}

void KvBlockPool::stop_allocating(int segment) {
  Segment& s = find_segment(segment);
  if (!s.allocating) return;
  s.allocating = false;
  free_allocatable_ -= static_cast<int64_t>(s.free_slots.size());
}

void KvBlockPool::resume_allocating(int segment) {
  Segment& s = find_segment(segment);
  if (s.allocating) return;
  s.allocating = true;
  free_allocatable_ += static_cast<int64_t>(s.free_slots.size());
}

bool KvBlockPool::is_allocating(int segment) const { return find_segment(segment).allocating; }
int64_t KvBlockPool::segment_blocks(int segment) const { return find_segment(segment).n_blocks; }
int64_t KvBlockPool::segment_used_blocks(int segment) const { return find_segment(segment).n_used; }

void KvBlockPool::remove_segment(int segment) {
  if (segment == kBaseSegment) fail<InvalidArgument>("the base KV segment is the pool's own memory and cannot be removed");
  const Segment& s = find_segment(segment);
  if (s.n_used > 0) {
    fail<InvalidArgument>("KV segment {} still holds {} live blocks; migrate them before removing it", segment, s.n_used);
  }
  capacity_ -= s.n_blocks;
  if (s.allocating) free_allocatable_ -= s.n_blocks;
  segments_.erase(segments_.begin() + (&s - segments_.data()));
}

std::vector<int> KvBlockPool::segment_ids() const {
  std::vector<int> ids;
  ids.reserve(segments_.size());
  for (const Segment& s : segments_) ids.push_back(s.id);
  return ids;
}

int KvBlockPool::segment_of(int32_t block) const { return allocated_state(block).segment; }

}  // namespace morphserve
