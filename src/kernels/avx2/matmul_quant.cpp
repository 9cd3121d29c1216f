// AVX2 matmul for Q8_0 / Q4_0 weights against int8-quantized activations, dot form with a
// tile of R rows × T tokens. Without VNNI the int8 products go through maddubs (u8×s8 → s16
// pairs) and madd (→ s32):
//  - Q4_0: nibbles q ∈ [0,15] are already unsigned; Σq·x − 8·Σx gives Σ(q−8)·x. Pairs stay
//    below 2·15·127, far from int16 saturation.
//  - Q8_0: the sign trick, |w| × sign(x, w); pairs stay ≤ 2·128·127 < 32767 because the
//    activations never reach −128.
// At one token this kernel is bound by instructions, not by memory, unless the float side is
// amortised: see group() below.
#include <immintrin.h>

#include "kernels/avx2/exp.h"  // tail_mask
#include "kernels/avx2/pair_fold.h"
#include "kernels/matmul_impl.h"

namespace morphserve::matmul_detail::avx2 {
namespace {

using kernel_impl::avx2::tail_mask;

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int32_t hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// The per-block work splits into the integer dot (per block) and the float scaling, which is
// where a one-block-at-a-time loop spends most of its instructions (fp16 scale load, convert,
// multiply by the activation scale, broadcast, convert the dots, FMA: 6 of 15). Here the scales
// of 8 blocks are converted at once (gathered with scalar loads, which use other ports), the dots
// of two blocks are folded into one vector (lanes alternating between them) before one convert
// and one FMA, and Q4_0's −8·Σx correction becomes one FMA per 8 blocks in float.
struct Q8 {
  using Block = BlockQ8_0;
  static constexpr bool kOffset = false;
  static constexpr int kRows = 1;
  // The raw weights; |w| is taken at each use, which keeps one register per block and row
  // instead of two (the pair loop holds 2 blocks × R rows of them).
  struct W {
    __m256i w;
  };
  static W load(const Block& b) { return {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs))}; }
  // The maddubs pair sums, up to 2·128·127: too large to add two of them in int16.
  static constexpr bool kInt16Fold = false;
  static __m256i pairs(const W& w, __m256i x) {
    return _mm256_maddubs_epi16(_mm256_sign_epi8(w.w, w.w), _mm256_sign_epi8(x, w.w));
  }
};

struct Q4 {
  using Block = BlockQ4_0;
  static constexpr bool kOffset = true;  // levels are q, the weight is q − 8
  static constexpr int kRows = 1;
  struct W {
    __m256i q;
  };
  static W load(const Block& b) {
    // Both halves hold the 16 bytes; the upper one shifted right by 4 gives weights 16..31.
    const __m256i raw = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs)));
    const __m256i both = _mm256_srlv_epi32(raw, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4));
    return {_mm256_and_si256(both, _mm256_set1_epi8(0x0f))};
  }
  static constexpr bool kInt16Fold = true;  // pair sums ≤ 2·15·127
  static __m256i pairs(const W& w, __m256i x) { return _mm256_maddubs_epi16(w.q, x); }
};

constexpr int kGroup = 8;  // blocks whose scales are converted together

// The fp16 scales of blocks w[0..n) (n ≤ 8) as floats, lanes past n zero.
template <typename Block>
inline __m256 block_scales(const Block* w, int n) {
  uint64_t lo = 0, hi = 0;
  for (int i = 0; i < n && i < 4; ++i) lo |= static_cast<uint64_t>(w[i].d) << (16 * i);
  for (int i = 4; i < n; ++i) hi |= static_cast<uint64_t>(w[i].d) << (16 * (i - 4));
  return _mm256_cvtph_ps(_mm_set_epi64x(static_cast<int64_t>(hi), static_cast<int64_t>(lo)));
}

// Blocks [b, b + n) of R rows × T tokens (n ≤ 8; below 8 only at the row's end).
template <typename K, int R, int T>
inline void group(const typename K::Block* const* w, const QuantizedActs& acts, int64_t t0, int64_t b, int n,
                  __m256 (&acc)[R][T], __m256 (&offset_acc)[R][T]) {
  const __m256i valid = tail_mask(n);
  __m256 scale[R][T];
  for (int r = 0; r < R; ++r) {
    const __m256 dw = block_scales(w[r] + b, n);
    for (int t = 0; t < T; ++t) {
      const float* dx = acts.d + (t0 + t) * acts.nb + b;
      scale[r][t] = _mm256_mul_ps(dw, n == kGroup ? _mm256_loadu_ps(dx) : _mm256_maskload_ps(dx, valid));
    }
  }
  if constexpr (K::kOffset) {
    for (int t = 0; t < T; ++t) {
      const int* sum = acts.sum + (t0 + t) * acts.nb + b;
      const __m256 x_sum = _mm256_cvtepi32_ps(n == kGroup ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sum))
                                                          : _mm256_maskload_epi32(sum, valid));
      for (int r = 0; r < R; ++r) offset_acc[r][t] = _mm256_fmadd_ps(scale[r][t], x_sum, offset_acc[r][t]);
    }
  }
#pragma GCC unroll 4
  for (int p = 0; 2 * p < n; ++p) {
    const int64_t b0 = b + 2 * p;
    const bool second = 2 * p + 1 < n;
    typename K::W w0[R], w1[R];
    for (int r = 0; r < R; ++r) {
      // The first and the last byte of the pair, 4 KB ahead: every line once or twice, spread
      // over the group as the loads are (a burst per group streamed slower with two threads).
      const char* pair = reinterpret_cast<const char*>(w[r] + b0);
      _mm_prefetch(pair + 4096, _MM_HINT_T0);
      _mm_prefetch(pair + 4096 + 2 * sizeof(typename K::Block) - 1, _MM_HINT_T0);
      w0[r] = K::load(w[r][b0]);
      if (second) w1[r] = K::load(w[r][b0 + 1]);
    }
    const __m256i pick = K::kInt16Fold ? pair_pick_int16(p) : pair_pick(p);
    for (int t = 0; t < T; ++t) {
      const int8_t* x = acts.qs + (t0 + t) * acts.stride + b0 * 32;
      const __m256i x0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(x));
      const __m256i x1 = second ? _mm256_load_si256(reinterpret_cast<const __m256i*>(x + 32)) : _mm256_setzero_si256();
      for (int r = 0; r < R; ++r) {
        const __m256i p0 = K::pairs(w0[r], x0);
        const __m256i p1 = second ? K::pairs(w1[r], x1) : _mm256_setzero_si256();
        const __m256i ones = _mm256_set1_epi16(1);
        const __m256 dots = _mm256_cvtepi32_ps(K::kInt16Fold ? fold_pair_int16(p0, p1)
                                                             : fold_pair(_mm256_madd_epi16(p0, ones), _mm256_madd_epi16(p1, ones)));
        acc[r][t] = _mm256_fmadd_ps(dots, _mm256_permutevar8x32_ps(scale[r][t], pick), acc[r][t]);
      }
    }
  }
}

template <typename K, int R, int T>
void tile(const MatmulCall& call, const QuantizedActs& acts, int64_t r0, int64_t t0) {
  using Block = typename K::Block;
  const Block* w[R];
  for (int r = 0; r < R; ++r) w[r] = reinterpret_cast<const Block*>(call.weight_row(r0 + r));
  __m256 acc[R][T], offset_acc[R][T];
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) acc[r][t] = offset_acc[r][t] = _mm256_setzero_ps();
  }
  int64_t b = 0;
  for (; b + kGroup <= acts.nb; b += kGroup) group<K, R, T>(w, acts, t0, b, kGroup, acc, offset_acc);
  if (b < acts.nb) group<K, R, T>(w, acts, t0, b, static_cast<int>(acts.nb - b), acc, offset_acc);
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) {
      if constexpr (K::kOffset) acc[r][t] = _mm256_fnmadd_ps(_mm256_set1_ps(8.0f), offset_acc[r][t], acc[r][t]);
      call.y[(t0 + t) * call.w.rows + r0 + r] = hsum(acc[r][t]);
    }
  }
}

template <typename K>
void compute_rows(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  const QuantizedActs acts = QuantizedActs::at(call.acts, call.n_tokens, call.w.cols);
  constexpr int R = K::kRows;
  constexpr int T = 2;
  int64_t r = row_begin;
  for (; r + R <= row_end; r += R) {
    int64_t t = 0;
    for (; t + T <= call.n_tokens; t += T) tile<K, R, T>(call, acts, r, t);
    for (; t < call.n_tokens; ++t) tile<K, R, 1>(call, acts, r, t);
  }
  for (; r < row_end; ++r) {
    int64_t t = 0;
    for (; t + T <= call.n_tokens; t += T) tile<K, 1, T>(call, acts, r, t);
    for (; t < call.n_tokens; ++t) tile<K, 1, 1>(call, acts, r, t);
  }
}

}  // namespace

void quantize_act_row(const float* x, int64_t cols, int8_t* qs, float* d, int32_t* sum) {
  const __m256 sign_bit = _mm256_set1_ps(-0.0f);
  // packs interleaves 128-bit lanes; this restores element order.
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t b = 0; b < cols / 32; ++b, x += 32) {
    const __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
    const __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
    const __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign_bit, v0), _mm256_andnot_ps(sign_bit, v1)),
                                   _mm256_max_ps(_mm256_andnot_ps(sign_bit, v2), _mm256_andnot_ps(sign_bit, v3)));
    const float amax = hmax(m);
    // Same operations as quantize_act_block_ref: one division, then x*id rounded to nearest even.
    const __m256 id = _mm256_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
    const __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, id));
    const __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, id));
    const __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, id));
    const __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, id));
    sum[b] = hsum_epi32(_mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3)));
    const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs + b * 32), _mm256_permutevar8x32_epi32(packed, order));
    d[b] = amax / 127.0f;
  }
}

void compute_q8_0(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  compute_rows<Q8>(call, row_begin, row_end);
}

void compute_q4_0(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  compute_rows<Q4>(call, row_begin, row_end);
}

}  // namespace morphserve::matmul_detail::avx2
