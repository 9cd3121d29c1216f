#pragma once
// The vectorised online-softmax attention shared by avx2/attention.cpp and avx512/attention.cpp.
// Include only from those files: every function here is a template over an ISA traits type S
// (vector type, lanes, loads, exp...) and a KV element type Kv, so each ISA's instantiations are
// distinct and compiled with that folder's flags.
//
// One call handles one unit: up to kMaxHeadsPerUnit query heads of one query sharing one kv head.
// Keys are taken kAttentionKeyChunk at a time; for each chunk every head scores the chunk's keys,
// updates its running max m and denominator l (rescaling its accumulator by exp(m_old - m_new) when
// the max grows) and accumulates the chunk's values. The chunk's K/V rows come from memory for the
// first head and from L1/L2 for the rest. (Software prefetching of the next chunk was measured and
// gained under 10% cold while costing 20% hot: the hardware prefetchers follow the row stride.)
// head_dim is covered by NC vectors (a template parameter, so the loops unroll and q / the
// accumulator stay in registers); the last one may be partial.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>

#include "kernels/elementwise_impl.h"

namespace morphserve::kernel_impl {

// Addresses of the K and V rows of one chunk of keys. (Templates on the ISA traits, like everything
// here, so no inline function is shared between code compiled with different ISA flags.)
template <class S>
struct ChunkRows {
  const std::byte* k[kAttentionKeyChunk];
  const std::byte* v[kAttentionKeyChunk];
  int count = 0;
};

// Walks a unit's keys chunk by chunk through the block table.
template <class S>
class ChunkWalker {
 public:
  ChunkWalker(const KvBlocks& kv, int64_t n_keys, int64_t token_stride, int64_t head_offset)
      : kv_(kv), left_(n_keys), token_stride_(token_stride), head_offset_(head_offset) {}

  // Fills `rows` with the next chunk (count 0 when the keys are exhausted).
  void next(ChunkRows<S>& rows) {
    rows.count = static_cast<int>(std::min<int64_t>(kAttentionKeyChunk, left_));
    for (int t = 0; t < rows.count; ++t) {
      const int64_t offset = slot_ * token_stride_ + head_offset_;
      rows.k[t] = kv_.k_blocks[block_] + offset;
      rows.v[t] = kv_.v_blocks[block_] + offset;
      if (++slot_ == kv_.block_size) {
        slot_ = 0;
        ++block_;
      }
    }
    left_ -= rows.count;
  }

 private:
  const KvBlocks& kv_;
  int64_t left_;
  int64_t token_stride_;
  int64_t head_offset_;
  int64_t block_ = 0;
  int slot_ = 0;
};

template <class S, class Kv, int NC>
void attend_unit(const AttentionArgs& a, int64_t query, int head_begin) {
  using Vec = typename S::Vec;
  constexpr int L = S::kLanes;
  const KvBlocks& kv = a.kv;
  const int hd = kv.head_dim;
  const int n_heads = a.heads_per_unit;
  const auto tail = S::tail(hd - (NC - 1) * L);  // lanes of the last vector that hold head dims
  const int kv_head = head_begin / (a.n_heads / kv.n_kv_heads);
  const int row_bytes = hd * Kv::kBytes;
  const int64_t token_stride = int64_t{kv.n_kv_heads} * row_bytes;
  const int64_t head_offset = int64_t{kv_head} * row_bytes;
  const float* q0 = a.q + (query * a.n_heads + head_begin) * hd;
  const int64_t n_keys = a.first_pos + query + 1;
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();

  alignas(64) float acc_mem[kMaxHeadsPerUnit][NC * L];
  float m[kMaxHeadsPerUnit];
  float l[kMaxHeadsPerUnit];
  for (int g = 0; g < n_heads; ++g) {
    m[g] = kNegInf;
    l[g] = 0.0f;
    for (int c = 0; c < NC; ++c) S::store(acc_mem[g] + c * L, S::zero());
  }
  alignas(64) float s[kAttentionKeyChunk];

  ChunkWalker<S> walker(kv, n_keys, token_stride, head_offset);
  ChunkRows<S> cur;
  for (walker.next(cur); cur.count > 0; walker.next(cur)) {
    const int count = cur.count;
    // Pad the scores to whole vectors with -inf: no effect on the max, and exp(-inf - m) = 0.
    const int padded = (count + L - 1) / L * L;
    for (int g = 0; g < n_heads; ++g) {
      const float* q = q0 + g * hd;
      Vec qv[NC];
      const Vec scale = S::set1(a.scale);
      for (int c = 0; c < NC; ++c) {
        qv[c] = S::mul(c == NC - 1 ? S::load_tail(q + c * L, tail) : S::load(q + c * L), scale);
      }
      int t = 0;
      // Four keys at a time: q is read once per four rows and the four horizontal sums share one
      // transposing reduction.
      for (; t + 4 <= count; t += 4) {
        const std::byte* k0 = cur.k[t];
        const std::byte* k1 = cur.k[t + 1];
        const std::byte* k2 = cur.k[t + 2];
        const std::byte* k3 = cur.k[t + 3];
        Vec d0 = S::zero(), d1 = S::zero(), d2 = S::zero(), d3 = S::zero();
        for (int c = 0; c < NC; ++c) {
          if (c == NC - 1) {
            d0 = S::fmadd(qv[c], Kv::load_tail(k0, c, tail), d0);
            d1 = S::fmadd(qv[c], Kv::load_tail(k1, c, tail), d1);
            d2 = S::fmadd(qv[c], Kv::load_tail(k2, c, tail), d2);
            d3 = S::fmadd(qv[c], Kv::load_tail(k3, c, tail), d3);
          } else {
            d0 = S::fmadd(qv[c], Kv::load(k0, c), d0);
            d1 = S::fmadd(qv[c], Kv::load(k1, c), d1);
            d2 = S::fmadd(qv[c], Kv::load(k2, c), d2);
            d3 = S::fmadd(qv[c], Kv::load(k3, c), d3);
          }
        }
        S::reduce_add4(d0, d1, d2, d3, s + t);
      }
      for (; t < count; ++t) {
        const std::byte* k = cur.k[t];
        Vec d = S::zero();
        for (int c = 0; c < NC; ++c) d = S::fmadd(qv[c], c == NC - 1 ? Kv::load_tail(k, c, tail) : Kv::load(k, c), d);
        s[t] = S::reduce_add(d);
      }
      for (int t = count; t < padded; ++t) s[t] = kNegInf;
      Vec vmax = S::set1(kNegInf);
      for (int t = 0; t < padded; t += L) vmax = S::max(vmax, S::load(s + t));
      const float chunk_max = S::reduce_max(vmax);
      Vec acc[NC];
      for (int c = 0; c < NC; ++c) acc[c] = S::load(acc_mem[g] + c * L);
      if (chunk_max > m[g]) {
        const float correction = std::exp(m[g] - chunk_max);  // 0 on the first chunk (m = -inf)
        const Vec vc = S::set1(correction);
        for (int c = 0; c < NC; ++c) acc[c] = S::mul(acc[c], vc);
        l[g] *= correction;
        m[g] = chunk_max;
      }
      const Vec vm = S::set1(m[g]);
      Vec psum = S::zero();
      for (int t = 0; t < padded; t += L) {
        const Vec p = S::exp(S::sub(S::load(s + t), vm));
        S::store(s + t, p);
        psum = S::add(psum, p);
      }
      l[g] += S::reduce_add(psum);
      for (int t = 0; t < count; ++t) {
        const std::byte* v = cur.v[t];
        const Vec p = S::set1(s[t]);
        for (int c = 0; c < NC; ++c) {
          acc[c] = S::fmadd(p, c == NC - 1 ? Kv::load_tail(v, c, tail) : Kv::load(v, c), acc[c]);
        }
      }
      for (int c = 0; c < NC; ++c) S::store(acc_mem[g] + c * L, acc[c]);
    }
  }
  for (int g = 0; g < n_heads; ++g) {
    float* out = a.out + (query * a.n_heads + head_begin + g) * hd;
    const Vec inv = S::set1(1.0f / l[g]);
    for (int c = 0; c < NC; ++c) {
      const Vec r = S::mul(S::load(acc_mem[g] + c * L), inv);
      if (c == NC - 1) {
        S::store_tail(out + c * L, tail, r);
      } else {
        S::storeu(out + c * L, r);
      }
    }
  }
}

template <class S, class Kv, int NC>
void attend_units(const AttentionArgs& a, int64_t begin, int64_t end) {
  const int per_query = a.n_heads / a.heads_per_unit;
  for (int64_t u = begin; u < end; ++u) {
    attend_unit<S, Kv, NC>(a, u / per_query, static_cast<int>(u % per_query) * a.heads_per_unit);
  }
}

using AttendUnitsFn = void (*)(const AttentionArgs&, int64_t, int64_t);

// attend_units<S, Kv, NC> for NC = 1..kMaxChunks, indexed by NC - 1.
template <class S, class Kv, size_t... I>
constexpr std::array<AttendUnitsFn, sizeof...(I)> attend_units_table(std::index_sequence<I...>) {
  return {&attend_units<S, Kv, static_cast<int>(I) + 1>...};
}

}  // namespace morphserve::kernel_impl
