// AVX-512 VNNI matmul for Q8_0 / Q4_0 weights in "dot form" (decode and small batches).
//
// vpdpbusd multiplies unsigned by signed bytes. Instead of llama.cpp's sign trick (abs + sign,
// two extra ops per vector) the weights are made unsigned and the offset is removed with the
// activation block sums, which prepare() computes once per token:
//  - Q4_0: nibbles q ∈ [0,15] are unsigned already; Σ(q−8)·x = Σq·x − 8·Σx.
//  - Q8_0: w ^ 0x80 = w + 128 as unsigned; Σw·x = Σ(w+128)·x − 128·Σx.
// The correction enters as the accumulator's starting value, so it costs one load.
//
// One zmm of weights covers a group of blocks (Q4_0: 4 blocks of 16 nibble bytes, 4 int32 lanes
// each; Q8_0: 2 blocks of 32 bytes, 8 lanes each). Two groups A and B form a pair: their dot
// vectors are folded into one with unpacklo/unpackhi + add, so each 128-bit lane then holds
// [A, B, A, B] partial sums of one block of A and one of B. One convert, one scale multiply and
// one FMA per pair instead of per group, and the pair's eight (Q4_0) or four (Q8_0) fp16 scales
// come from a single vpermt2w over the 128 bytes at the pair's start (blocks are 18 or 34 bytes,
// so every scale sits at an even offset). prepare_quant_gemv() lays the activations out to match.
// Per Q4_0 block this is ~3.4 port-0/5 uops against ~3.75 for one group at a time.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 AVX-512 intrinsics, never read
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstring>

#include "kernels/avx512/matmul_avx512.h"

namespace morphserve::matmul_detail::avx512 {
namespace {

// Software prefetch distance along each weight row. The quantized kernels spend enough uops per
// byte that the out-of-order window covers too little DRAM latency on its own, and the hardware
// prefetcher stops at 4 KB pages: prefetching every line 4 KB ahead raised decode from ~45% to
// ~86% of the measured bandwidth (bench_matmul, 2 threads; one prefetch per pair, i.e. every other
// line, only reached ~65%).
constexpr int64_t kPrefetchBytes = 4096;

struct Q4 {
  static constexpr DType kType = DType::Q4_0;
  static constexpr int kBlockBytes = sizeof(BlockQ4_0);
  static constexpr int kGroupBlocks = 4;
  struct W {
    __m512i lo, hi;
  };
  static W load(const uint8_t* p) {
    __m512i raw = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2)));
    raw = _mm512_inserti32x4(raw, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 20)), 1);
    raw = _mm512_inserti32x4(raw, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 38)), 2);
    raw = _mm512_inserti32x4(raw, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 56)), 3);
    const __m512i nibble = _mm512_set1_epi8(0x0f);
    return {_mm512_and_si512(raw, nibble), _mm512_and_si512(_mm512_srli_epi16(raw, 4), nibble)};
  }
  static __m512i dot(__m512i init, const W& w, const int8_t* x) {
    const __m512i acc = _mm512_dpbusd_epi32(init, w.lo, _mm512_load_si512(x));
    return _mm512_dpbusd_epi32(acc, w.hi, _mm512_load_si512(x + 64));
  }
};

struct Q8 {
  static constexpr DType kType = DType::Q8_0;
  static constexpr int kBlockBytes = sizeof(BlockQ8_0);
  static constexpr int kGroupBlocks = 2;
  struct W {
    __m512i q;
  };
  static W load(const uint8_t* p) {
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 36));
    const __m512i raw = _mm512_inserti64x4(_mm512_castsi256_si512(b0), b1, 1);
    return {_mm512_xor_si512(raw, _mm512_set1_epi8(static_cast<char>(0x80)))};
  }
  static __m512i dot(__m512i init, const W& w, const int8_t* x) {
    return _mm512_dpbusd_epi32(init, w.q, _mm512_load_si512(x));
  }
};

// vpermt2w indices putting, in each 128-bit lane L, the scale of the A block of L in words 0 and
// 2 and that of the B block in words 1 and 3 (the folded dot layout), for the pair at word 0.
__m512i pair_scale_index(DType type) {
  const GroupedActs layout(nullptr, type, 1, 32);
  const int words_per_block = (type == DType::Q4_0 ? sizeof(BlockQ4_0) : sizeof(BlockQ8_0)) / 2;
  alignas(64) int16_t idx[32] = {};
  for (int i = 0; i < 16; ++i) {
    const int lane = i / 4;
    const int block = (i % 2 == 0) ? layout.a_block(lane) : layout.b_block(lane);
    idx[i] = static_cast<int16_t>(words_per_block * block);
  }
  return _mm512_load_si512(idx);
}

inline __m512 pair_scales(const uint8_t* p, __m512i index) {
  const __m512i words = _mm512_permutex2var_epi16(_mm512_loadu_si512(p), index, _mm512_loadu_si512(p + 64));
  return _mm512_cvtph_ps(_mm512_castsi512_si256(words));
}

// Pointers into one token's activations, advanced pair by pair.
struct ActCursor {
  const int8_t* qs;
  const float* d;
  const int32_t* corr;
};

// One pair of groups for R rows × T tokens; `rows[r]` points at the pair's first block.
template <typename K, int R, int T>
inline void pair_step(const uint8_t* const* rows, const ActCursor* x, __m512i index, __m512 (&acc)[R][T]) {
  constexpr int64_t group_bytes = K::kGroupBlocks * K::kBlockBytes;
  constexpr int64_t group_qs = K::kGroupBlocks * 32;
  typename K::W wa[R], wb[R];
  __m512 ws[R];
  for (int r = 0; r < R; ++r) {
    wa[r] = K::load(rows[r]);
    wb[r] = K::load(rows[r] + group_bytes);
    ws[r] = pair_scales(rows[r], index);
  }
  for (int t = 0; t < T; ++t) {
    const __m512i corr_a = _mm512_load_si512(x[t].corr);
    const __m512i corr_b = _mm512_load_si512(x[t].corr + 16);
    const __m512 dx = _mm512_load_ps(x[t].d);
    for (int r = 0; r < R; ++r) {
      const __m512i da = K::dot(corr_a, wa[r], x[t].qs);
      const __m512i db = K::dot(corr_b, wb[r], x[t].qs + group_qs);
      const __m512i folded = _mm512_add_epi32(_mm512_unpacklo_epi32(da, db), _mm512_unpackhi_epi32(da, db));
      acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(folded), _mm512_mul_ps(ws[r], dx), acc[r][t]);
    }
  }
}

template <typename K, int R, int T>
void tile(const MatmulCall& call, const GroupedActs& acts, int64_t r0, int64_t t0, __m512i index) {
  constexpr int64_t pair_blocks = 2 * K::kGroupBlocks;
  constexpr int64_t pair_bytes = pair_blocks * K::kBlockBytes;
  constexpr int64_t pair_qs = pair_blocks * 32;
  const uint8_t* w[R];
  for (int r = 0; r < R; ++r) w[r] = reinterpret_cast<const uint8_t*>(call.weight_row(r0 + r));
  ActCursor x[T];
  for (int t = 0; t < T; ++t) x[t] = {acts.qs(t0 + t), acts.dvec(t0 + t), acts.cvec(t0 + t)};
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();

  const int64_t nb = call.w.cols / 32;
  const int64_t full_pairs = nb / pair_blocks;
  for (int64_t g = 0; g < full_pairs; ++g) {
    // Every cache line of the pair (136 or 144 bytes), one pair ahead of kPrefetchBytes.
    for (int r = 0; r < R; ++r) {
      for (int64_t line = 0; line < pair_bytes; line += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(w[r] + kPrefetchBytes + line), _MM_HINT_T1);
      }
    }
    pair_step<K, R, T>(w, x, index, acc);
    for (int r = 0; r < R; ++r) w[r] += pair_bytes;
    for (int t = 0; t < T; ++t) x[t] = {x[t].qs + pair_qs, x[t].d + 16, x[t].corr + 32};
  }
  if (full_pairs * pair_blocks < nb) {
    // The last, partial pair: copy its blocks into a zeroed buffer so the pair code never reads
    // past the row (zero weights meet zero activation padding and zero scales).
    alignas(64) uint8_t tail[R][8 * sizeof(BlockQ4_0) > 4 * sizeof(BlockQ8_0) ? 8 * sizeof(BlockQ4_0) + 64
                                                                               : 4 * sizeof(BlockQ8_0) + 64];
    const uint8_t* tail_rows[R];
    const size_t bytes = static_cast<size_t>(nb - full_pairs * pair_blocks) * K::kBlockBytes;
    for (int r = 0; r < R; ++r) {
      std::memset(tail[r], 0, sizeof(tail[r]));
      std::memcpy(tail[r], w[r], bytes);
      tail_rows[r] = tail[r];
    }
    pair_step<K, R, T>(tail_rows, x, index, acc);
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) call.y[(t0 + t) * call.w.rows + r0 + r] = _mm512_reduce_add_ps(acc[r][t]);
}

template <typename K, int R>
void row_tile(const MatmulCall& call, const GroupedActs& acts, int64_t r0, __m512i index) {
  constexpr int T = 4;
  int64_t t = 0;
  for (; t + T <= call.n_tokens; t += T) tile<K, R, T>(call, acts, r0, t, index);
  switch (call.n_tokens - t) {
    case 3: tile<K, R, 3>(call, acts, r0, t, index); break;
    case 2: tile<K, R, 2>(call, acts, r0, t, index); break;
    case 1: tile<K, R, 1>(call, acts, r0, t, index); break;
    default: break;
  }
}

template <typename K>
void compute_rows(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  const GroupedActs acts(call.acts, call.w.type, call.n_tokens, call.w.cols);
  const __m512i index = pair_scale_index(K::kType);
  // Two rows per tile: four measured 25% slower at decode from DRAM (fewer loads in flight per row).
  int64_t r = row_begin;
  for (; r + 2 <= row_end; r += 2) row_tile<K, 2>(call, acts, r, index);
  for (; r < row_end; ++r) row_tile<K, 1>(call, acts, r, index);
}

}  // namespace

void compute_quant_gemv(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  if (call.w.type == DType::Q4_0) {
    compute_rows<Q4>(call, row_begin, row_end);
  } else {
    compute_rows<Q8>(call, row_begin, row_end);
  }
}

}  // namespace morphserve::matmul_detail::avx512
