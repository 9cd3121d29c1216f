// Scalar paged attention with an online softmax: the reference for the SIMD levels, and the same
// algorithm they run. Keys are streamed in chunks of kAttentionKeyChunk; after scoring a chunk the
// running max m, the running denominator l and the output accumulator are rescaled by exp(m_old - m)
// when the max grows, so no n_keys-sized buffer is needed.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/half.h"
#include "kernels/elementwise_impl.h"

namespace morphserve::kernel_impl::scalar {
namespace {

// Reads element i of a K/V row in the cache's type.
inline float load_kv(const std::byte* row, int64_t i, bool f16) {
  if (f16) return fp16_to_fp32(reinterpret_cast<const uint16_t*>(row)[i]);
  return reinterpret_cast<const float*>(row)[i];
}

void attend_one(const AttentionArgs& a, int64_t query, int head) {
  const KvBlocks& kv = a.kv;
  const int hd = kv.head_dim;
  const bool f16 = kv.type == DType::F16;
  const int64_t elem = f16 ? 2 : 4;
  const int kv_head = head / (a.n_heads / kv.n_kv_heads);
  // Byte offset of (token j, kv_head) inside a block: (j * n_kv_heads + kv_head) * head_dim.
  const int64_t token_stride = int64_t{kv.n_kv_heads} * hd * elem;
  const int64_t head_offset = int64_t{kv_head} * hd * elem;
  const float* q = a.q + (query * a.n_heads + head) * hd;
  float* out = a.out + (query * a.n_heads + head) * hd;

  // The scale is folded into q once instead of into every score.
  float qs[kMaxAttentionHeadDim];
  float acc[kMaxAttentionHeadDim];
  for (int d = 0; d < hd; ++d) {
    qs[d] = q[d] * a.scale;
    acc[d] = 0.0f;
  }
  float m = -std::numeric_limits<float>::infinity();
  float l = 0.0f;
  float s[kAttentionKeyChunk];

  const int64_t n_keys = a.first_pos + query + 1;
  int64_t block = 0;  // where the current chunk starts: logical block and slot in it
  int slot = 0;
  for (int64_t k0 = 0; k0 < n_keys; k0 += kAttentionKeyChunk) {
    const int count = static_cast<int>(std::min<int64_t>(kAttentionKeyChunk, n_keys - k0));
    int64_t b = block;
    int j = slot;
    float chunk_max = -std::numeric_limits<float>::infinity();
    for (int t = 0; t < count; ++t) {
      const std::byte* k = kv.k_blocks[b] + j * token_stride + head_offset;
      float dot = 0.0f;
      for (int d = 0; d < hd; ++d) dot += qs[d] * load_kv(k, d, f16);
      s[t] = dot;
      chunk_max = std::max(chunk_max, dot);
      if (++j == kv.block_size) {
        j = 0;
        ++b;
      }
    }
    if (chunk_max > m) {
      const float correction = std::exp(m - chunk_max);  // 0 on the first chunk (m = -inf)
      l *= correction;
      for (int d = 0; d < hd; ++d) acc[d] *= correction;
      m = chunk_max;
    }
    b = block;
    j = slot;
    for (int t = 0; t < count; ++t) {
      const float p = std::exp(s[t] - m);
      l += p;
      const std::byte* v = kv.v_blocks[b] + j * token_stride + head_offset;
      for (int d = 0; d < hd; ++d) acc[d] += p * load_kv(v, d, f16);
      if (++j == kv.block_size) {
        j = 0;
        ++b;
      }
    }
    block = b;
    slot = j;
  }
  const float inv = 1.0f / l;
  for (int d = 0; d < hd; ++d) out[d] = acc[d] * inv;
}

}  // namespace

void attention_units(const AttentionArgs& args, int64_t unit_begin, int64_t unit_end) {
  const int per_query = args.n_heads / args.heads_per_unit;
  for (int64_t u = unit_begin; u < unit_end; ++u) {
    const int head_begin = static_cast<int>(u % per_query) * args.heads_per_unit;
    for (int g = 0; g < args.heads_per_unit; ++g) attend_one(args, u / per_query, head_begin + g);
  }
}

void store_f16(const float* src, std::byte* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = fp32_to_fp16(src[i]);
    std::memcpy(dst + 2 * i, &h, sizeof h);
  }
}

}  // namespace morphserve::kernel_impl::scalar
