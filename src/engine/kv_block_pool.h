#pragma once
// Paged KV cache storage: fixed-size blocks, each holding K and V of block_size tokens for every
// layer. Sequences own lists of block ids (block tables); attention reads through them, so blocks
// need not be contiguous (DESIGN.md §4). This is the storage core; segments, reference counts and
// migration build on it.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/aligned_buffer.h"
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

class KvBlockPool {
 public:
  KvBlockPool(const KvLayout& layout, int64_t n_blocks);

  const KvLayout& layout() const { return layout_; }
  int64_t capacity_blocks() const { return static_cast<int64_t>(n_blocks_); }
  int64_t free_blocks() const { return static_cast<int64_t>(free_list_.size()); }
  int64_t used_blocks() const { return capacity_blocks() - free_blocks(); }
  size_t bytes() const { return storage_.size(); }

  // Returns a free block id, or -1 when none is left.
  int32_t allocate();
  void release(int32_t block);

  std::byte* k_data(int32_t block, int layer);
  std::byte* v_data(int32_t block, int layer);

 private:
  KvLayout layout_;
  size_t n_blocks_;
  AlignedBuffer storage_;
  std::vector<int32_t> free_list_;
  std::vector<uint8_t> in_use_;
};

// The blocks one sequence holds and how many token positions are written.
struct SequenceKv {
  std::vector<int32_t> blocks;
  int64_t n_tokens = 0;  // positions [0, n_tokens) are written

  // Allocates blocks until positions [0, n_positions) fit; returns false (allocating nothing
  // more) when the pool runs out.
  bool reserve(KvBlockPool& pool, int64_t n_positions);
  void release_all(KvBlockPool& pool);
};

}  // namespace morphserve
