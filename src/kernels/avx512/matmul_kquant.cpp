// AVX-512 VNNI matmul for the K-quant weights (Q4_K, Q5_K, Q6_K) in dot form, for decode and
// small batches (below kKQuantGemmMinTokens, see matmul_table.cpp; matmul_gemm_kquant.cpp does the rest).
//
// A 256-weight super-block unpacks to four zmm of unsigned levels (Q4_K: nibbles 0..15; Q5_K: plus
// the fifth bit, 0..31; Q6_K: q in 0..63, the −32 offset removed through the activation sums), each
// met by one vpdpbusd with int8 activations that prepare_kquant_gemv() laid out in the same order
// (KQuantActs). Every 128-bit lane of those four dot vectors belongs to a single sub-block (Q4_K/Q5_K:
// half of a 32-weight one; Q6_K: one of 16), so folding the four with unpacklo/hi + add (twice) puts
// lane L of vector k at lane 4L+k of one vector: one convert, one multiply by the per-lane
// d·sc·xd and one FMA per super-block and token instead of four of each. The sub-block scales are
// unpacked once per row and super-block into that lane order; Q4_K/Q5_K's min term is one more FMA
// of dmin·m (lanes 0..7) against the token's xd·Σx.
//
// Integer bounds: a Q6_K 16-value dot is at most 63·127·16 < 2^17 and the correction −32·Σx
// keeps it exact; Q5_K's 32-value dot at most 31·127·32 < 2^17.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 AVX-512 intrinsics, see matmul_quant.cpp
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstddef>
#include <cstring>

#include "kernels/avx512/kquant_scales.h"
#include "kernels/avx512/matmul_avx512.h"

namespace morphserve::matmul_detail::avx512 {
namespace {

// As in matmul_quant.cpp: the hardware prefetcher stops at 4 KB pages.
constexpr int64_t kPrefetchBytes = 4096;

// Folded lane i = 4L + k holds 128-bit lane L of dot vector k.
// Q4_K/Q5_K: vectors 0..3 are sub-blocks (0|2), (1|3), (4|6), (5|7) in their lower|upper 256 bits.
constexpr int kQ45Sub[16] = {0, 1, 4, 5, 0, 1, 4, 5, 2, 3, 6, 7, 2, 3, 6, 7};
// Where block b's activations go: the weights unpack to blocks 0,2,1,3,4,6,5,7.
constexpr int kQ45Slot[8] = {0, 2, 1, 3, 4, 6, 5, 7};
// Q6_K: vector k covers weights 64k..64k+63, so 128-bit lane L is sub-block 4k+L.
constexpr int kQ6Sub[16] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};

inline __m512i fold4(__m512i d0, __m512i d1, __m512i d2, __m512i d3) {
  const __m512i f01 = _mm512_add_epi32(_mm512_unpacklo_epi32(d0, d1), _mm512_unpackhi_epi32(d0, d1));
  const __m512i f23 = _mm512_add_epi32(_mm512_unpacklo_epi32(d2, d3), _mm512_unpackhi_epi32(d2, d3));
  return _mm512_add_epi32(_mm512_unpacklo_epi64(f01, f23), _mm512_unpackhi_epi64(f01, f23));
}

__m512i lane_index(const int (&sub)[16]) {
  alignas(64) int32_t idx[16];
  for (int i = 0; i < 16; ++i) idx[i] = sub[i];
  return _mm512_load_si512(idx);
}

// One row's super-block, unpacked: four level vectors, the per-lane d·sc and (Q4_K/Q5_K) the
// dmin·m of sub-blocks 0..7 in lanes 0..7.
struct Unpacked {
  __m512i q[4];
  __m512 scale;
  __m512 min;
};

inline void q45_row_scales(const uint8_t* block, __m512i sub_index, Unpacked& u) {
  uint16_t d, dmin;
  std::memcpy(&d, block, 2);
  std::memcpy(&dmin, block + 2, 2);
  const __m512 f = q45_scales_mins(block + 4);
  u.scale = _mm512_mul_ps(_mm512_permutexvar_ps(sub_index, f), _mm512_set1_ps(_cvtsh_ss(d)));
  // Lanes 0..7 get f's lanes 8..15 (the mins); 8..15 are zeroed.
  u.min = _mm512_maskz_mul_ps(0x00ff, _mm512_shuffle_f32x4(f, f, _MM_SHUFFLE(3, 2, 3, 2)), _mm512_set1_ps(_cvtsh_ss(dmin)));
}

inline void q4_nibbles(const uint8_t* qs, Unpacked& u) {
  const __m512i nibble = _mm512_set1_epi8(0x0f);
  const __m512i a = _mm512_loadu_si512(qs);
  const __m512i b = _mm512_loadu_si512(qs + 64);
  u.q[0] = _mm512_and_si512(a, nibble);
  u.q[1] = _mm512_and_si512(_mm512_srli_epi16(a, 4), nibble);
  u.q[2] = _mm512_and_si512(b, nibble);
  u.q[3] = _mm512_and_si512(_mm512_srli_epi16(b, 4), nibble);
}

struct Q4K {
  static constexpr int kBlockBytes = sizeof(BlockQ4_K);
  static constexpr bool kHasMin = true;
  static __m512i sub_index() { return lane_index(kQ45Sub); }
  static void unpack(const uint8_t* block, __m512i sub_index, Unpacked& u) {
    q4_nibbles(block + offsetof(BlockQ4_K, qs), u);
    q45_row_scales(block, sub_index, u);
  }
};

struct Q5K {
  static constexpr int kBlockBytes = sizeof(BlockQ5_K);
  static constexpr bool kHasMin = true;
  static __m512i sub_index() { return lane_index(kQ45Sub); }
  static void unpack(const uint8_t* block, __m512i sub_index, Unpacked& u) {
    q4_nibbles(block + offsetof(BlockQ5_K, qs), u);
    // Vector k holds sub-blocks (s, s+2) with s = {0,1,4,5}[k]; their fifth bits are bits s and s+2 of
    // qh[l], tested in the lower and upper 32 bytes of qh broadcast to both halves.
    const __m512i qh = _mm512_broadcast_i64x4(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + offsetof(BlockQ5_K, qh))));
    const __m512i sixteen = _mm512_set1_epi8(16);
    constexpr int kFirst[4] = {0, 1, 4, 5};
    for (int k = 0; k < 4; ++k) {
      const __m512i bits = _mm512_inserti64x4(_mm512_set1_epi8(static_cast<char>(1 << kFirst[k])),
                                              _mm256_set1_epi8(static_cast<char>(1 << (kFirst[k] + 2))), 1);
      u.q[k] = _mm512_mask_add_epi8(u.q[k], _mm512_test_epi8_mask(qh, bits), u.q[k], sixteen);
    }
    q45_row_scales(block, sub_index, u);
  }
};

struct Q6K {
  static constexpr int kBlockBytes = sizeof(BlockQ6_K);
  static constexpr bool kHasMin = false;
  static __m512i sub_index() { return lane_index(kQ6Sub); }
  static void unpack(const uint8_t* block, __m512i sub_index, Unpacked& u) {
    const __m512i nibble = _mm512_set1_epi8(0x0f);
    const __m512i top = _mm512_set1_epi8(0x30);
    // Per 128-weight half: the low vector (weights 0..63) takes qh bits 0-1 (lower 32 bytes) and
    // 2-3 (upper), moved to bits 4-5; the high vector (64..127) bits 4-5 and 6-7. Shifting 16-bit
    // words is safe: the 0x30 mask drops whatever crossed from the neighbouring byte.
    const __m512i low_shift = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i high_shift = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    for (int h = 0; h < 2; ++h) {
      const __m512i ql = _mm512_loadu_si512(block + offsetof(BlockQ6_K, ql) + 64 * h);
      const __m512i qh = _mm512_broadcast_i64x4(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + offsetof(BlockQ6_K, qh) + 32 * h)));
      u.q[2 * h] = _mm512_or_si512(_mm512_and_si512(ql, nibble), _mm512_and_si512(_mm512_sllv_epi16(qh, low_shift), top));
      u.q[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), nibble),
                                       _mm512_and_si512(_mm512_srlv_epi16(qh, high_shift), top));
    }
    uint16_t d;
    std::memcpy(&d, block + offsetof(BlockQ6_K, d), 2);
    const __m128i sc = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + offsetof(BlockQ6_K, scales)));
    const __m512 f = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(sc));
    u.scale = _mm512_mul_ps(_mm512_permutexvar_ps(sub_index, f), _mm512_set1_ps(_cvtsh_ss(d)));
    u.min = _mm512_setzero_ps();
  }
};

template <typename K, int R, int T>
void tile(const MatmulCall& call, int64_t r0, int64_t t0, __m512i sub_index) {
  const uint8_t* w[R];
  for (int r = 0; r < R; ++r) w[r] = reinterpret_cast<const uint8_t*>(call.weight_row(r0 + r));
  const int8_t* x[T];
  for (int t = 0; t < T; ++t) x[t] = reinterpret_cast<const int8_t*>(KQuantActs::token(call.acts, t0 + t, call.w.cols));
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();

  const int64_t n_super = call.w.cols / kKQuantBlock;
  for (int64_t i = 0; i < n_super; ++i) {
    Unpacked u[R];
    for (int r = 0; r < R; ++r) {
      const uint8_t* block = w[r] + i * K::kBlockBytes;
      for (int line = 0; line < K::kBlockBytes; line += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(block + kPrefetchBytes + line), _MM_HINT_T1);
      }
      K::unpack(block, sub_index, u[r]);
    }
    for (int t = 0; t < T; ++t) {
      const int8_t* xs = x[t] + i * KQuantActs::kBytes;
      const __m512 dx = _mm512_load_ps(reinterpret_cast<const float*>(xs + 256));
      const __m512i corr = _mm512_load_si512(xs + 320);
      for (int r = 0; r < R; ++r) {
        const __m512i zero = _mm512_setzero_si512();
        const __m512i d0 = _mm512_dpbusd_epi32(zero, u[r].q[0], _mm512_load_si512(xs));
        const __m512i d1 = _mm512_dpbusd_epi32(zero, u[r].q[1], _mm512_load_si512(xs + 64));
        const __m512i d2 = _mm512_dpbusd_epi32(zero, u[r].q[2], _mm512_load_si512(xs + 128));
        const __m512i d3 = _mm512_dpbusd_epi32(zero, u[r].q[3], _mm512_load_si512(xs + 192));
        __m512i dots = fold4(d0, d1, d2, d3);
        if constexpr (!K::kHasMin) dots = _mm512_add_epi32(dots, corr);  // Σ(q−32)·x
        acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots), _mm512_mul_ps(u[r].scale, dx), acc[r][t]);
        if constexpr (K::kHasMin) acc[r][t] = _mm512_fnmadd_ps(u[r].min, _mm512_castsi512_ps(corr), acc[r][t]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) call.y[(t0 + t) * call.w.rows + r0 + r] = _mm512_reduce_add_ps(acc[r][t]);
}

template <typename K, int R>
void row_tile(const MatmulCall& call, int64_t r0, __m512i sub_index) {
  constexpr int T = 4;
  int64_t t = 0;
  for (; t + T <= call.n_tokens; t += T) tile<K, R, T>(call, r0, t, sub_index);
  switch (call.n_tokens - t) {
    case 3: tile<K, R, 3>(call, r0, t, sub_index); break;
    case 2: tile<K, R, 2>(call, r0, t, sub_index); break;
    case 1: tile<K, R, 1>(call, r0, t, sub_index); break;
    default: break;
  }
}

template <typename K>
void compute_rows(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  const __m512i sub_index = K::sub_index();
  int64_t r = row_begin;
  for (; r + 2 <= row_end; r += 2) row_tile<K, 2>(call, r, sub_index);
  for (; r < row_end; ++r) row_tile<K, 1>(call, r, sub_index);
}

}  // namespace

void prepare_kquant_gemv(const MatmulCall& call, int64_t token_begin, int64_t token_end) {
  const bool q6 = call.w.type == DType::Q6_K;
  const int64_t n_super = call.w.cols / kKQuantBlock;
  for (int64_t t = token_begin; t < token_end; ++t) {
    std::byte* base = KQuantActs::token(call.acts, t, call.w.cols);
    const float* x = call.x + t * call.w.cols;
    for (int64_t i = 0; i < n_super; ++i, x += kKQuantBlock) {
      int8_t* qs = reinterpret_cast<int8_t*>(base + i * KQuantActs::kBytes);
      float* dvec = reinterpret_cast<float*>(qs + 256);
      float d[8];
      int32_t sum[8], half_sum[16];
      for (int b = 0; b < 8; ++b) {
        int8_t* dst = qs + 32 * (q6 ? b : kQ45Slot[b]);
        quantize_act_block(x + 32 * b, dst, &d[b], &sum[b]);
        int32_t first = 0;
        for (int l = 0; l < 16; ++l) first += dst[l];
        half_sum[2 * b] = first;
        half_sum[2 * b + 1] = sum[b] - first;
      }
      if (q6) {
        int32_t* corr = reinterpret_cast<int32_t*>(qs + 320);
        for (int lane = 0; lane < 16; ++lane) {
          dvec[lane] = d[kQ6Sub[lane] / 2];
          corr[lane] = -32 * half_sum[kQ6Sub[lane]];
        }
      } else {
        float* xsum = reinterpret_cast<float*>(qs + 320);
        for (int lane = 0; lane < 16; ++lane) {
          dvec[lane] = d[kQ45Sub[lane]];
          xsum[lane] = lane < 8 ? d[lane] * static_cast<float>(sum[lane]) : 0.0f;
        }
      }
    }
  }
}

void compute_kquant_gemv(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  switch (call.w.type) {
    case DType::Q4_K: compute_rows<Q4K>(call, row_begin, row_end); break;
    case DType::Q5_K: compute_rows<Q5K>(call, row_begin, row_end); break;
    default: compute_rows<Q6K>(call, row_begin, row_end); break;
  }
}

}  // namespace morphserve::matmul_detail::avx512
