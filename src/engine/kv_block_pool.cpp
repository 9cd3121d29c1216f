#include "engine/kv_block_pool.h"

#include "core/error.h"

namespace morphserve {

void KvLayout::validate() const {
  if (n_layers <= 0 || kv_dim <= 0) fail<InvalidArgument>("KV layout needs layers and a positive kv width");
  if (block_size <= 0) fail<InvalidArgument>("KV block size must be positive, got {}", block_size);
  if (type != DType::F16 && type != DType::F32) {
    fail<InvalidArgument>("KV cache type must be f16 or f32, not {}", dtype_name(type));
  }
}

KvBlockPool::KvBlockPool(const KvLayout& layout, int64_t n_blocks)
    : layout_(layout), n_blocks_(static_cast<size_t>(n_blocks)) {
  layout_.validate();
  if (n_blocks <= 0) fail<InvalidArgument>("the KV pool needs at least one block, got {}", n_blocks);
  storage_ = AlignedBuffer(layout_.block_bytes() * n_blocks_);
  in_use_.assign(n_blocks_, 0);
  free_list_.reserve(n_blocks_);
  // Lowest ids are handed out first: easier to read in logs and tests.
  for (int64_t b = n_blocks - 1; b >= 0; --b) free_list_.push_back(static_cast<int32_t>(b));
}

int32_t KvBlockPool::allocate() {
  if (free_list_.empty()) return -1;
  const int32_t block = free_list_.back();
  free_list_.pop_back();
  in_use_[static_cast<size_t>(block)] = 1;
  return block;
}

void KvBlockPool::release(int32_t block) {
  if (block < 0 || static_cast<size_t>(block) >= n_blocks_ || !in_use_[static_cast<size_t>(block)]) {
    fail<InvalidArgument>("KV block {} is not allocated", block);
  }
  in_use_[static_cast<size_t>(block)] = 0;
  free_list_.push_back(block);
}

std::byte* KvBlockPool::k_data(int32_t block, int layer) {
  return storage_.data() + layout_.block_bytes() * static_cast<size_t>(block) +
         layout_.half_layer_bytes() * 2 * static_cast<size_t>(layer);
}

std::byte* KvBlockPool::v_data(int32_t block, int layer) { return k_data(block, layer) + layout_.half_layer_bytes(); }

bool SequenceKv::reserve(KvBlockPool& pool, int64_t n_positions) {
  const int64_t bs = pool.layout().block_size;
  const int64_t needed = (n_positions + bs - 1) / bs - static_cast<int64_t>(blocks.size());
  if (needed <= 0) return true;
  if (needed > pool.free_blocks()) return false;
  for (int64_t i = 0; i < needed; ++i) blocks.push_back(pool.allocate());
  return true;
}

void SequenceKv::release_all(KvBlockPool& pool) {
  for (int32_t b : blocks) pool.release(b);
  blocks.clear();
  n_tokens = 0;
}

}  // namespace morphserve
