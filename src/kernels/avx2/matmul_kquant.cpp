// AVX2 matmul for the K-quant weights (Q4_K, Q5_K, Q6_K) against the plain int8 activation
// blocks, dot form with R rows × T tokens. Per activation block of 32 the weights unpack to one
// ymm of unsigned levels and maddubs (u8×s8 → s16 pairs) multiplies them with the activations;
// then two blocks' int32 dots are folded into one vector (pair_fold.h), so each pair costs one
// convert and one FMA against the float scales of the super-block's 8 blocks:
//  - Q4_K / Q5_K: a sub-block is one block, so its integer scale joins d·xd in the float scale
//    (d·sc·xd) and madd only widens.
//  - Q6_K: two 16-value sub-blocks per block, so madd applies their scales as int16 (one in each
//    half, one shuffle of the super-block's unpacked scales) and the float scale is d·xd.
//  - Q4_K / Q5_K: pairs stay ≤ 2·31·127 (no int16 saturation); the min term dmin·m·xd·Σx is one
//    FMA per super-block over its 8 blocks.
//  - Q6_K: q ∈ [0,63]; Σ(q−32)·x comes from subtracting maddubs(32, x) (per token) from
//    maddubs(q, x) in int16, |difference| ≤ 2·63·127 + 2·32·127 < 32767.
#include <immintrin.h>

#include <array>
#include <cstddef>
#include <cstring>

#include "core/half.h"
#include "kernels/avx2/kquant_scales.h"
#include "kernels/avx2/pair_fold.h"
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
  __m256 scales;     // d·sc of sub-blocks 0..7
  __m256 min;        // dmin·m of sub-blocks 0..7
};

// pshufb indices that fill the lower half with 16-bit lane `lo` and the upper half with lane `hi`
// of the same half: built at compile time, so a block's scale costs one load and one shuffle.
struct alignas(32) ByteIndex {
  int8_t b[32];
};
constexpr auto kWordPick = [] {
  std::array<std::array<ByteIndex, 8>, 8> table{};
  for (int lo = 0; lo < 8; ++lo) {
    for (int hi = 0; hi < 8; ++hi) {
      for (int i = 0; i < 16; i += 2) {
        table[lo][hi].b[i] = static_cast<int8_t>(2 * lo);
        table[lo][hi].b[i + 1] = static_cast<int8_t>(2 * lo + 1);
        table[lo][hi].b[16 + i] = static_cast<int8_t>(2 * hi);
        table[lo][hi].b[16 + i + 1] = static_cast<int8_t>(2 * hi + 1);
      }
    }
  }
  return table;
}();

inline __m256i pick_epi16(__m256i v, int lo, int hi) {
  return _mm256_shuffle_epi8(v, _mm256_load_si256(reinterpret_cast<const __m256i*>(kWordPick[lo][hi].b)));
}

template <bool kFifthBit>
struct Q45 {
  using Row = Q45Row;
  static constexpr int kBlockBytes = kFifthBit ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K);
  static constexpr bool kHasMin = true;
  static constexpr bool kIntScales = false;  // the scale is in block_scales()
  static void row(const uint8_t* block, Row& r) {
    uint16_t d, dmin;
    std::memcpy(&d, block, 2);
    std::memcpy(&dmin, block + 2, 2);
    uint8_t sm[16];  // scales then mins
    q45_scales_mins(block + 4, sm);
    const __m256 sc = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sm))));
    r.scales = _mm256_mul_ps(sc, _mm256_set1_ps(_cvtsh_ss(d)));
    const __m256 m = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sm + 8))));
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
  // One scale per 32 weights: it goes with d into the float scale, and the pair sums (≤ 2·31·127)
  // fold in int16.
  static __m256 block_scales(const Row& r) { return r.scales; }
};

struct Q6Row {
  const uint8_t* block;
  __m256i scales_lo, scales_hi;  // the 16 int8 scales as int16: 0..7 and 8..15, each in both halves
  float d;
};

struct Q6 {
  using Row = Q6Row;
  static constexpr int kBlockBytes = sizeof(BlockQ6_K);
  static constexpr bool kHasMin = false;
  static constexpr bool kIntScales = true;   // two per block, applied by madd
  static void row(const uint8_t* block, Row& r) {
    uint16_t d;
    std::memcpy(&d, block + offsetof(BlockQ6_K, d), 2);
    r.block = block;
    r.d = _cvtsh_ss(d);
    const __m256i all = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + offsetof(BlockQ6_K, scales))));
    r.scales_lo = _mm256_permute2x128_si256(all, all, 0x00);
    r.scales_hi = _mm256_permute2x128_si256(all, all, 0x11);
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
  // Scale 2j for the block's first 16 weights (lower half), 2j + 1 for the rest.
  static __m256 block_scales(const Row& r) { return _mm256_set1_ps(r.d); }
  static __m256i int_scales(const Row& r, int j) {
    return j < 4 ? pick_epi16(r.scales_lo, 2 * j, 2 * j + 1) : pick_epi16(r.scales_hi, 2 * j - 8, 2 * j - 7);
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
    // d·xd of the super-block's 8 blocks, then per pair of blocks one convert and one FMA.
    __m256 scale[R][T];
    for (int t = 0; t < T; ++t) {
      const __m256 dx = _mm256_loadu_ps(acts.d + (t0 + t) * acts.nb + i * 8);
      for (int r = 0; r < R; ++r) scale[r][t] = _mm256_mul_ps(dx, K::block_scales(row[r]));
    }
#pragma GCC unroll 4
    for (int p = 0; p < 4; ++p) {
      __m256i q0[R], q1[R], sc0[R], sc1[R];
      for (int r = 0; r < R; ++r) {
        q0[r] = K::levels(row[r], 2 * p);
        q1[r] = K::levels(row[r], 2 * p + 1);
        if constexpr (K::kIntScales) {
          sc0[r] = K::int_scales(row[r], 2 * p);
          sc1[r] = K::int_scales(row[r], 2 * p + 1);
        }
      }
      const __m256i pick = K::kIntScales ? pair_pick(p) : pair_pick_int16(p);
      for (int t = 0; t < T; ++t) {
        const int8_t* x = acts.qs + (t0 + t) * acts.stride + (i * 8 + 2 * p) * 32;
        const __m256i x0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(x));
        const __m256i x1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(x + 32));
        __m256i offset0 = _mm256_setzero_si256(), offset1 = _mm256_setzero_si256();
        if constexpr (!K::kHasMin) {
          offset0 = _mm256_maddubs_epi16(thirty_two, x0);  // 32·(x₀+x₁) per pair
          offset1 = _mm256_maddubs_epi16(thirty_two, x1);
        }
        for (int r = 0; r < R; ++r) {
          __m256i pairs0 = _mm256_maddubs_epi16(q0[r], x0), pairs1 = _mm256_maddubs_epi16(q1[r], x1);
          if constexpr (!K::kHasMin) {
            pairs0 = _mm256_sub_epi16(pairs0, offset0);
            pairs1 = _mm256_sub_epi16(pairs1, offset1);
          }
          const __m256i dots = K::kIntScales
                                   ? fold_pair(_mm256_madd_epi16(pairs0, sc0[r]), _mm256_madd_epi16(pairs1, sc1[r]))
                                   : fold_pair_int16(pairs0, pairs1);
          acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots), _mm256_permutevar8x32_ps(scale[r][t], pick), acc[r][t]);
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
  constexpr int R = 1;
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
