// AVX2 matmul for Q8_0 / Q4_0 weights against int8-quantized activations, dot form with a
// tile of R rows × T tokens. Without VNNI the int8 products go through maddubs (u8×s8 → s16
// pairs) and madd (→ s32):
//  - Q4_0: nibbles q ∈ [0,15] are already unsigned; Σq·x − 8·Σx gives Σ(q−8)·x. Pairs stay
//    below 2·15·127, far from int16 saturation.
//  - Q8_0: the sign trick, |w| × sign(x, w); pairs stay ≤ 2·128·127 < 32767 because the
//    activations never reach −128.
#include <immintrin.h>

#include "kernels/matmul_impl.h"

namespace morphserve::matmul_detail::avx2 {
namespace {

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

struct Q8 {
  using Block = BlockQ8_0;
  // Per-row prepared operands of one block: the unsigned |w| and w itself (for the signs).
  struct W {
    __m256i abs, sign;
  };
  static W load(const Block& b) {
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
    return {_mm256_sign_epi8(w, w), w};
  }
  static __m256i dot(const W& w, __m256i x, int32_t) {
    const __m256i pairs = _mm256_maddubs_epi16(w.abs, _mm256_sign_epi8(x, w.sign));
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
  }
};

struct Q4 {
  using Block = BlockQ4_0;
  struct W {
    __m256i q;
  };
  static W load(const Block& b) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw);
    return {_mm256_and_si256(both, _mm256_set1_epi8(0x0f))};
  }
  static __m256i dot(const W& w, __m256i x, int32_t x_sum) {
    const __m256i dots = _mm256_madd_epi16(_mm256_maddubs_epi16(w.q, x), _mm256_set1_epi16(1));
    return _mm256_add_epi32(dots, _mm256_castsi128_si256(_mm_cvtsi32_si128(-8 * x_sum)));
  }
};

template <typename K, int R, int T>
void tile(const MatmulCall& call, const QuantizedActs& acts, int64_t r0, int64_t t0) {
  using Block = typename K::Block;
  const Block* w[R];
  for (int r = 0; r < R; ++r) w[r] = reinterpret_cast<const Block*>(call.weight_row(r0 + r));
  __m256 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < acts.nb; ++b) {
    typename K::W wv[R];
    float dw[R];
    for (int r = 0; r < R; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(&w[r][b]) + 4096, _MM_HINT_T0);  // blocks < 64 B: every line
      wv[r] = K::load(w[r][b]);
      dw[r] = _cvtsh_ss(w[r][b].d);
    }
    for (int t = 0; t < T; ++t) {
      const int64_t token = t0 + t;
      const __m256i xv = _mm256_load_si256(reinterpret_cast<const __m256i*>(acts.qs + token * acts.stride + b * 32));
      const float dx = acts.d[token * acts.nb + b];
      const int32_t x_sum = acts.sum[token * acts.nb + b];
      for (int r = 0; r < R; ++r) {
        const __m256 dots = _mm256_cvtepi32_ps(K::dot(wv[r], xv, x_sum));
        acc[r][t] = _mm256_fmadd_ps(dots, _mm256_set1_ps(dw[r] * dx), acc[r][t]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) call.y[(t0 + t) * call.w.rows + r0 + r] = hsum(acc[r][t]);
}

template <typename K>
void compute_rows(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  const QuantizedActs acts = QuantizedActs::at(call.acts, call.n_tokens, call.w.cols);
  constexpr int R = 2;
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
