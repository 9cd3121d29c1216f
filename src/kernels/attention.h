#pragma once
// Causal attention of a chunk of queries over one sequence's paged KV cache (DESIGN.md §4): keys
// and values are read through per-block pointers, never as one contiguous array, so blocks may
// live in any KV segment in any order.
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"
#include "kernels/cpu_features.h"

namespace morphserve {

class ThreadPool;

// Paged KV for one sequence and one layer. Block b (0-based logical block of the sequence) holds
// block_size tokens; K of token j (0 <= j < block_size) and kv head h starts at element
// (j * n_kv_heads + h) * head_dim of k_blocks[b]; same for V in v_blocks[b]. type is F32 or F16.
struct KvBlocks {
  DType type = DType::F32;
  const std::byte* const* k_blocks = nullptr;
  const std::byte* const* v_blocks = nullptr;
  int block_size = 16;
  int n_kv_heads = 0;
  int head_dim = 0;
};

// Largest head_dim the kernels accept: the running output of one head lives on the stack.
inline constexpr int kMaxAttentionHeadDim = 256;

// q: [n_q][n_heads][head_dim]; query i is at position first_pos + i and attends causally to keys
// 0..first_pos+i, all of which must already be written into the blocks. GQA: query head h uses kv
// head h / (n_heads / n_kv_heads). out: same shape as q (must not alias it). scale is usually
// 1/sqrt(head_dim). Keys are streamed with an online softmax, so nothing is allocated per call. The
// work is cut into units of query heads sharing a kv head (which read that head's K/V once) and the
// units are split across the pool in contiguous runs of equal key counts; small calls run on the
// calling thread. Every head's result is independent of the split (bit-identical for any pool size).
void attention(const float* q, int64_t n_q, int64_t first_pos, int n_heads, const KvBlocks& kv, float scale,
               float* out, ThreadPool& pool);
// Same at an explicit instruction set; throws InvalidArgument if this CPU lacks it.
void attention_with_isa(Isa isa, const float* q, int64_t n_q, int64_t first_pos, int n_heads, const KvBlocks& kv,
                        float scale, float* out, ThreadPool& pool);

}  // namespace morphserve
