// AVX2 GEMM for F32 / F16 / BF16 weights, used when many tokens share the weights (prefill): the
// register kernel; the blocking is matmul_gemm_float_driver.h's, as on AVX-512.
//
// Register tile: R weight rows × V token vectors (8 tokens each) of fp32 accumulators. At each k
// the kernel loads V vectors of the transposed activation panel and broadcasts one weight per row:
// R·V FMAs for V + R loads. R=6, V=2 uses 12 accumulators + 2 activations + 1 broadcast of the 16
// ymm registers: 8 loads per 12 FMAs, within what a core issues per cycle (2 FMAs, 2–3 loads), where
// the dot form needs a weight and an activation load per 2 FMAs and a horizontal sum per output.
//
// Blocking: a 96-row block's converted chunk (96×256×4 = 96 KB) and the panel slices the kernel
// streams (16 tokens × 256 × 4 = 16 KB each) stay in a 512 KB L2.
#include <immintrin.h>

#include "kernels/avx2/simd.h"
#include "kernels/matmul_gemm_float_driver.h"
#include "kernels/matmul_impl.h"

namespace morphserve::matmul_detail::avx2 {
namespace {

using kernel_impl::avx2::Simd;
using Panels = FloatPanelsOf<Simd, 2>;

constexpr int kRowTile = 6;
constexpr int64_t kRowBlock = 16 * kRowTile;
constexpr int64_t kChunk = 256;

// The loops are unrolled by pragma: where the accumulator array is indexed by a loop GCC 12 does
// not unroll (even the final store), it keeps a stack copy of the array up to date on every k
// (one store per FMA, half the speed).
template <int R, int V>
void kernel(const float* w, int64_t w_stride, const float* xt, int64_t width, int64_t kc, float* yt,
            int64_t yt_stride, bool accumulate) {
  __m256 acc[R][V];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) acc[r][v] = _mm256_setzero_ps();
  }
  const float* wr[R];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) wr[r] = w + r * w_stride;
  for (int64_t k = 0; k < kc; ++k, xt += width) {
    __m256 x[V];
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) x[v] = _mm256_load_ps(xt + 8 * v);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m256 wb = _mm256_broadcast_ss(wr[r] + k);
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) acc[r][v] = _mm256_fmadd_ps(wb, x[v], acc[r][v]);
    }
  }
  // Partial sums of the earlier K chunks are added once at the end, not loaded into the
  // accumulators, which keeps the loop free of anything but loads and FMAs.
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) {
      float* out = yt + r * yt_stride + 8 * v;
      _mm256_store_ps(out, accumulate ? _mm256_add_ps(_mm256_load_ps(out), acc[r][v]) : acc[r][v]);
    }
  }
}

template <int R, int V>
struct FloatTile {
  static constexpr FloatGemmKernel run = kernel<R, V>;
};

}  // namespace

size_t float_gemm_scratch_bytes(int64_t n_tokens, int64_t cols) { return Panels::bytes(n_tokens, cols); }

int64_t float_gemm_panels(int64_t n_tokens, int64_t cols) { return Panels(nullptr, n_tokens, cols).n_panels; }

void prepare_float_gemm(const MatmulCall& call, int64_t panel_begin, int64_t panel_end) {
  prepare_float_panels<Panels>(call, panel_begin, panel_end);
}

void compute_float_gemm(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  constexpr auto pick = pick_tile_kernel<FloatGemmKernel, FloatTile, kRowTile, Panels::kMaxVecs>;
  compute_float_gemm_rows<Simd, Panels, kRowTile, kRowBlock, kChunk, pick>(call, row_begin, row_end, row_converters());
}

}  // namespace morphserve::matmul_detail::avx2
