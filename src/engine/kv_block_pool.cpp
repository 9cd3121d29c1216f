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

// Lowest ids are handed out first: easier to read in logs and tests.
void fill_free_list(std::vector<int32_t>& free_list, int32_t first, int32_t n) {
  free_list.clear();
  free_list.reserve(static_cast<size_t>(n));
  for (int32_t i = n - 1; i >= 0; --i) free_list.push_back(first + i);
}

}  // namespace

KvBlockPool::KvBlockPool(const KvLayout& layout, int64_t n_blocks) : layout_(layout) {
  layout_.validate();
  if (n_blocks <= 0) fail<InvalidArgument>("the KV pool needs at least one block, got {}", n_blocks);
  if (n_blocks > kMaxBlockIds) fail<InvalidArgument>("{} KV blocks are more than block ids can name", n_blocks);
  storage_ = AlignedBuffer(layout_.block_bytes() * static_cast<size_t>(n_blocks));
  const auto n = static_cast<int32_t>(n_blocks);
  const int32_t first = reserve_ids(n);
  Segment base;
  base.id = kBaseSegment;
  base.first_block = first;
  base.n_blocks = n;
  fill_free_list(base.free_list, first, n);
  for (int32_t i = 0; i < n; ++i) {
    blocks_[static_cast<size_t>(first + i)] = {storage_.data() + layout_.block_bytes() * static_cast<size_t>(i), kBaseSegment, 0};
  }
  segments_.push_back(std::move(base));
  capacity_ = n;
  free_allocatable_ = n;
}

KvBlockPool::~KvBlockPool() {
  for (SequenceKv* table : tables_) table->pool_ = nullptr;
}

int32_t KvBlockPool::allocate() {
  for (Segment& s : segments_) {
    if (!s.allocating || s.free_list.empty()) continue;
    const int32_t block = s.free_list.back();
    s.free_list.pop_back();
    blocks_[static_cast<size_t>(block)].refcount = 1;
    ++s.n_used;
    ++used_;
    --free_allocatable_;
    return block;
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

void KvBlockPool::free_block(int32_t block, Segment& segment) {
  blocks_[static_cast<size_t>(block)].refcount = 0;
  segment.free_list.push_back(block);
  --segment.n_used;
  --used_;
  if (segment.allocating) ++free_allocatable_;
}

int32_t KvBlockPool::refcount(int32_t block) const {
  if (block < 0 || static_cast<size_t>(block) >= blocks_.size() || blocks_[static_cast<size_t>(block)].segment < 0) {
    fail<InvalidArgument>("KV block id {} belongs to no segment", block);
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
  const size_t skip = (AlignedBuffer::kAlignment - address % AlignedBuffer::kAlignment) % AlignedBuffer::kAlignment;
  const size_t usable = bytes > skip ? bytes - skip : 0;
  const size_t n_blocks = usable / layout_.block_bytes();
  if (n_blocks == 0) {
    fail<InvalidArgument>("a KV segment of {} bytes holds no whole block of {} bytes", bytes, layout_.block_bytes());
  }
  if (static_cast<int64_t>(n_blocks) > kMaxBlockIds) fail<InvalidArgument>("a KV segment of {} blocks is too large", n_blocks);
  const auto n = static_cast<int32_t>(n_blocks);
  const int32_t first = reserve_ids(n);
  Segment s;
  s.id = next_segment_id_++;
  s.first_block = first;
  s.n_blocks = n;
  fill_free_list(s.free_list, first, n);
  std::byte* data = memory + skip;
  for (int32_t i = 0; i < n; ++i) {
    blocks_[static_cast<size_t>(first + i)] = {data + layout_.block_bytes() * static_cast<size_t>(i), s.id, 0};
  }
  segments_.push_back(std::move(s));
  capacity_ += n;
  free_allocatable_ += n;
  return segments_.back().id;
}

void KvBlockPool::stop_allocating(int segment) {
  Segment& s = find_segment(segment);
  if (!s.allocating) return;
  s.allocating = false;
  free_allocatable_ -= static_cast<int64_t>(s.free_list.size());
}

void KvBlockPool::resume_allocating(int segment) {
  Segment& s = find_segment(segment);
  if (s.allocating) return;
  s.allocating = true;
  free_allocatable_ += static_cast<int64_t>(s.free_list.size());
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
  for (int32_t i = 0; i < s.n_blocks; ++i) blocks_[static_cast<size_t>(s.first_block + i)] = BlockState{};
  return_ids(s.first_block, s.n_blocks);
  segments_.erase(segments_.begin() + (&s - segments_.data()));
}

std::vector<int> KvBlockPool::segment_ids() const {
  std::vector<int> ids;
  ids.reserve(segments_.size());
  for (const Segment& s : segments_) ids.push_back(s.id);
  return ids;
}

int KvBlockPool::segment_of(int32_t block) const {
  if (block < 0 || static_cast<size_t>(block) >= blocks_.size() || blocks_[static_cast<size_t>(block)].segment < 0) {
    fail<InvalidArgument>("KV block id {} belongs to no segment", block);
  }
  return blocks_[static_cast<size_t>(block)].segment;
}

int32_t KvBlockPool::reserve_ids(int32_t n) {
  for (auto it = free_ids_.begin(); it != free_ids_.end(); ++it) {
    if (it->second < n) continue;
    const int32_t first = it->first;
    it->first += n;
    it->second -= n;
    if (it->second == 0) free_ids_.erase(it);
    return first;
  }
  const auto first = static_cast<int64_t>(blocks_.size());
  if (first + n > kMaxBlockIds) fail<InvalidArgument>("KV block ids are exhausted ({} in use)", first);
  blocks_.resize(static_cast<size_t>(first + n));
  return static_cast<int32_t>(first);
}

void KvBlockPool::return_ids(int32_t first, int32_t n) {
  auto it = std::lower_bound(free_ids_.begin(), free_ids_.end(), std::pair{first, 0});
  it = free_ids_.insert(it, {first, n});
  // Coalesce with the next range, then with the previous one.
  if (auto next = it + 1; next != free_ids_.end() && it->first + it->second == next->first) {
    it->second += next->second;
    free_ids_.erase(next);
  }
  if (it != free_ids_.begin()) {
    if (auto prev = it - 1; prev->first + prev->second == it->first) {
      prev->second += it->second;
      it = free_ids_.erase(it) - 1;
    }
  }
  // A free range at the end of the id space is simply dropped, so the id space shrinks back.
  if (static_cast<size_t>(it->first) + static_cast<size_t>(it->second) == blocks_.size()) {
    blocks_.resize(static_cast<size_t>(it->first));
    free_ids_.erase(it);
  }
}

}  // namespace morphserve
