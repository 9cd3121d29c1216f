// AVX2 matmul for the K-quant weights (Q4_K, Q5_K, Q6_K) against the plain int8 activation
// blocks, dot form with R rows × T tokens. Per activation block of 32 the weights unpack to one
// ymm of unsigned levels; maddubs (u8×s8 → s16 pairs) then madd against the sub-block scales as
// int16 (Q6_K: the two 16-value sub-blocks' scales in the two halves) applies the integer scale
// inside the widening step, so each block costs one convert and one FMA with d·xd:
//  - Q4_K / Q5_K: pairs stay ≤ 2·31·127 (no int16 saturation); the min term dmin·m·xd·Σx is one
//    FMA per super-block over its 8 blocks.
//  - Q6_K: q ∈ [0,63]; Σ(q−32)·x comes from subtracting maddubs(32, x) (per token) from
//    maddubs(q, x) in int16, |difference| ≤ 2·63·127 + 2·32·127 < 32767.
#include <immintrin.h>

#include <cstddef>
#include <cstring>

#include "core/half.h"
#include "kernels/avx2/kquant_scales.h"
#include "kernels/matmul_impl.h"

namespace morphserve::matmul_detail::avx2 {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// One row's super-block as the block loop reads it.
struct Q45Row {
  const uint8_t* qs;
  __m256i qh;        // Q5_K's fifth bits (unused for Q4_K)
  float d;
  __m256 min;        // dmin·m of sub-blocks 0..7
  uint8_t sm[16];    // scales then mins
};

template <bool kFifthBit>
struct Q45 {
  using Row = Q45Row;
  static constexpr int kBlockBytes = kFifthBit ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K);
  static constexpr bool kHasMin = true;
  static void row(const uint8_t* block, Row& r) {
    uint16_t d, dmin;
    std::memcpy(&d, block, 2);
    std::memcpy(&dmin, block + 2, 2);
    q45_scales_mins(block + 4, r.sm);
    r.d = _cvtsh_ss(d);
    const __m256 m = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(r.sm + 8))));
    r.min = _mm256_mul_ps(m, _mm256_set1_ps(_cvtsh_ss(dmin)));
    if constexpr (kFifthBit) {
      r.qs = block + offsetof(BlockQ5_K, qs);
      r.qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + offsetof(BlockQ5_K, qh)));
    } else {
      r.qs = block + offsetof(BlockQ4_K, qs);
      r.qh = _mm256_setzero_si256();
    }
  }
  // Levels of sub-block j: chunk j/2, low nibbles for even j, plus bit j of qh as 16 (Q5_K).
  static __m256i levels(const Row& r, int j) {
    const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r.qs + 32 * (j / 2)));
    const __m256i nib = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(raw, 4) : raw, _mm256_set1_epi8(0x0f));
    if constexpr (!kFifthBit) return nib;
    const __m256i bit = _mm256_set1_epi8(static_cast<char>(1 << j));
    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(r.qh, bit), bit);
    return _mm256_or_si256(nib, _mm256_and_si256(set, _mm256_set1_epi8(16)));
  }
  static __m256i scales(const Row& r, int j) { return _mm256_set1_epi16(r.sm[j]); }
};

struct Q6Row {
  const uint8_t* block;
  float d;
};

struct Q6 {
  using Row = Q6Row;
  static constexpr int kBlockBytes = sizeof(BlockQ6_K);
  static constexpr bool kHasMin = false;
  static void row(const uint8_t* block, Row& r) {
    uint16_t d;
    std::memcpy(&d, block + offsetof(BlockQ6_K, d), 2);
    r.block = block;
    r.d = _cvtsh_ss(d);
  }
  // Block j (weights 32j..32j+31): half h = j/4, quarter q = j%4 of it.
  static __m256i levels(const Row& r, int j) {
    const int h = j / 4, q = j % 4;
    const __m256i ql = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r.block + 64 * h + 32 * (q % 2)));
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r.block + offsetof(BlockQ6_K, qh) + 32 * h));
    const __m256i low = _mm256_and_si256(q / 2 ? _mm256_srli_epi16(ql, 4) : ql, _mm256_set1_epi8(0x0f));
    // Bits 2q..2q+1 to bits 4..5; the mask drops what shifting 16-bit words moved across bytes.
    const __m256i shifted = q == 0 ? _mm256_slli_epi16(qh, 4)
                           : q == 1 ? _mm256_slli_epi16(qh, 2)
                           : q == 2 ? qh
                                    : _mm256_srli_epi16(qh, 2);
    return _mm256_or_si256(low, _mm256_and_si256(shifted, _mm256_set1_epi8(0x30)));
  }
  static __m256i scales(const Row& r, int j) {
    const int8_t* sc = reinterpret_cast<const int8_t*>(r.block + offsetof(BlockQ6_K, scales));
    return _mm256_set_m128i(_mm_set1_epi16(sc[2 * j + 1]), _mm_set1_epi16(sc[2 * j]));
  }
};

template <typename K, int R, int T>
void tile(const MatmulCall& call, const QuantizedActs& acts, int64_t r0, int64_t t0) {
  const uint8_t* w[R];
  for (int r = 0; r < R; ++r) w[r] = reinterpret_cast<const uint8_t*>(call.weight_row(r0 + r));
  __m256 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  const __m256i thirty_two = _mm256_set1_epi8(32);

  const int64_t n_super = call.w.cols / kKQuantBlock;
  for (int64_t i = 0; i < n_super; ++i) {
    typename K::Row row[R];
    for (int r = 0; r < R; ++r) {
      const uint8_t* block = w[r] + i * K::kBlockBytes;
      for (int line = 0; line < K::kBlockBytes; line += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(block + 4096 + line), _MM_HINT_T0);
      }
      K::row(block, row[r]);
    }
    if constexpr (K::kHasMin) {
      for (int t = 0; t < T; ++t) {
        const int64_t at = (t0 + t) * acts.nb + i * 8;
        const __m256 xsum = _mm256_mul_ps(_mm256_loadu_ps(acts.d + at),
                                          _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(acts.sum + at))));
        for (int r = 0; r < R; ++r) acc[r][t] = _mm256_fnmadd_ps(row[r].min, xsum, acc[r][t]);
      }
    }
    for (int j = 0; j < 8; ++j) {
      __m256i q[R], sc[R];
      for (int r = 0; r < R; ++r) {
        q[r] = K::levels(row[r], j);
        sc[r] = K::scales(row[r], j);
      }
      const int64_t b = i * 8 + j;
      for (int t = 0; t < T; ++t) {
        const int64_t token = t0 + t;
        const __m256i xv = _mm256_load_si256(reinterpret_cast<const __m256i*>(acts.qs + token * acts.stride + b * 32));
        const float dx = acts.d[token * acts.nb + b];
        __m256i offset = _mm256_setzero_si256();
        if constexpr (!K::kHasMin) offset = _mm256_maddubs_epi16(thirty_two, xv);  // 32·(x₀+x₁) per pair
        for (int r = 0; r < R; ++r) {
          __m256i pairs = _mm256_maddubs_epi16(q[r], xv);
          if constexpr (!K::kHasMin) pairs = _mm256_sub_epi16(pairs, offset);
          const __m256 dots = _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, sc[r]));
          acc[r][t] = _mm256_fmadd_ps(dots, _mm256_set1_ps(row[r].d * dx), acc[r][t]);
        }
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

void compute_q4_K(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  compute_rows<Q45<false>>(call, row_begin, row_end);
}

void compute_q5_K(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  compute_rows<Q45<true>>(call, row_begin, row_end);
}

void compute_q6_K(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  compute_rows<Q6>(call, row_begin, row_end);
}

}  // namespace morphserve::matmul_detail::avx2
