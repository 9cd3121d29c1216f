// AVX-512 matmul for F32 / F16 / BF16 weights in "dot form", used for decode and small batches:
// a tile of R rows × T tokens keeps R·T zmm accumulators; each weight vector is loaded and
// converted once for T tokens, so the weights stream from memory exactly once per token tile.
// R=4, T=4 uses 16 accumulators + 4 weights + 1 activation of the 32 registers. The column tail
// is a masked load, so any cols works without a scalar loop.
// GCC 12's AVX-512 intrinsics initialise their "undefined" operands from themselves, which
// -Wmaybe-uninitialized flags at every use; the values are never read.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include "kernels/avx512/matmul_avx512.h"

namespace morphserve::matmul_detail::avx512 {
namespace {

// Software prefetch distance along each weight row: raised decode from ~78% to ~84% of the
// measured bandwidth (bench_matmul f16 t1, 2 threads); the hardware prefetcher alone stops at 4 KB
// page boundaries.
constexpr int64_t kPrefetchBytes = 4096;

struct F32 {
  using Element = float;
  static __m512 load(const float* p) { return _mm512_loadu_ps(p); }
  static __m512 load_masked(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
};
struct F16 {
  using Element = uint16_t;
  static __m512 load(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static __m512 load_masked(const uint16_t* p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
};
struct BF16 {
  using Element = uint16_t;
  static __m512 widen(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
  static __m512 load(const uint16_t* p) { return widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static __m512 load_masked(const uint16_t* p, __mmask16 m) { return widen(_mm256_maskz_loadu_epi16(m, p)); }
};

template <typename L, int R, int T>
void tile(const MatmulCall& call, int64_t r0, int64_t t0) {
  using E = typename L::Element;
  const int64_t cols = call.w.cols;
  const E* w[R];
  const float* x[T];
  for (int r = 0; r < R; ++r) w[r] = reinterpret_cast<const E*>(call.weight_row(r0 + r));
  for (int t = 0; t < T; ++t) x[t] = call.x + (t0 + t) * cols;
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  int64_t c = 0;
  for (; c + 16 <= cols; c += 16) {
    __m512 wv[R];
    if ((c * sizeof(E)) % 64 == 0) {  // one prefetch per 64-byte line of each row
      for (int r = 0; r < R; ++r) _mm_prefetch(reinterpret_cast<const char*>(w[r] + c) + kPrefetchBytes, _MM_HINT_T0);
    }
    for (int r = 0; r < R; ++r) wv[r] = L::load(w[r] + c);
    for (int t = 0; t < T; ++t) {
      const __m512 xv = _mm512_loadu_ps(x[t] + c);
      for (int r = 0; r < R; ++r) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
    }
  }
  if (c < cols) {
    const __mmask16 m = static_cast<__mmask16>((1u << (cols - c)) - 1u);
    __m512 wv[R];
    for (int r = 0; r < R; ++r) wv[r] = L::load_masked(w[r] + c, m);
    for (int t = 0; t < T; ++t) {
      const __m512 xv = _mm512_maskz_loadu_ps(m, x[t] + c);
      for (int r = 0; r < R; ++r) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) call.y[(t0 + t) * call.w.rows + r0 + r] = _mm512_reduce_add_ps(acc[r][t]);
}

template <typename L, int R>
void row_tile(const MatmulCall& call, int64_t r0) {
  constexpr int T = 4;
  int64_t t = 0;
  for (; t + T <= call.n_tokens; t += T) tile<L, R, T>(call, r0, t);
  switch (call.n_tokens - t) {
    case 3: tile<L, R, 3>(call, r0, t); break;
    case 2: tile<L, R, 2>(call, r0, t); break;
    case 1: tile<L, R, 1>(call, r0, t); break;
    default: break;
  }
}

// R=4 rows × T=4 tokens. An 8-token × 3-row tile (24 accumulators) measured 25-50% slower from
// 8 tokens up: its activations (8 × cols × 4 bytes) no longer fit L1, and from 24 tokens the GEMM
// kernels take over anyway.
template <typename L>
void compute_rows(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  constexpr int R = 4;
  int64_t r = row_begin;
  for (; r + R <= row_end; r += R) row_tile<L, R>(call, r);
  for (; r < row_end; ++r) row_tile<L, 1>(call, r);
}

}  // namespace

void compute_float_gemv(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  switch (call.w.type) {
    case DType::F32: compute_rows<F32>(call, row_begin, row_end); break;
    case DType::F16: compute_rows<F16>(call, row_begin, row_end); break;
    case DType::BF16: compute_rows<BF16>(call, row_begin, row_end); break;
    default: break;
  }
}

}  // namespace morphserve::matmul_detail::avx512
