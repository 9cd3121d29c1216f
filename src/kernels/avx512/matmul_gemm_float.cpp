// AVX-512 GEMM for F32 / F16 / BF16 weights, used when many tokens share the weights (prefill):
// the register kernel; the blocking is matmul_gemm_float_driver.h's.
//
// Register tile: R weight rows × V token vectors (16 tokens each) of fp32 accumulators. At each k
// the kernel loads V vectors of the transposed activation panel and broadcasts one weight per row:
// R·V FMAs for V + R loads. R=6, V=4 uses 24 accumulators + 4 activations + 1 broadcast of the
// 32 zmm registers, and needs 10 loads per 24 FMAs (the core sustains 2 loads and 2 FMAs a cycle).
//
// Blocking: the converted chunk (96×512×4 = 192 KB) and the panel slice the kernel streams (64
// tokens × 512 × 4 = 128 KB) both stay in the 1 MB L2.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 AVX-512 intrinsics, see matmul_quant.cpp
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include "kernels/avx512/matmul_avx512.h"
#include "kernels/avx512/simd.h"
#include "kernels/matmul_gemm_float_driver.h"

namespace morphserve::matmul_detail::avx512 {
namespace {

using kernel_impl::avx512::Simd;

constexpr int kRowTile = 6;
// Measured on the 2048×2048×128 F16 case (one thread, CPU time): 96-row blocks and 512-column
// chunks reach ~80% of the FMA peak; 128-column chunks lose 15% to per-call overhead and
// copying F32 weights into the chunk buffer lost more than it gained.
constexpr int64_t kRowBlock = 16 * kRowTile;
constexpr int64_t kChunk = 512;

// acc[r][v] over k in [0, kc): w rows at w + r*w_stride, panel xt of `width` floats per k.
// Results go to yt[r * yt_stride + 16v ...], added to what is there when `accumulate`.
template <int R, int V>
void kernel(const float* w, int64_t w_stride, const float* xt, int64_t width, int64_t kc, float* yt,
            int64_t yt_stride, bool accumulate) {
  __m512 acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = accumulate ? _mm512_load_ps(yt + r * yt_stride + 16 * v) : _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k, xt += width) {
    __m512 x[V];
    for (int v = 0; v < V; ++v) x[v] = _mm512_load_ps(xt + 16 * v);
    for (int r = 0; r < R; ++r) {
      const __m512 wb = _mm512_set1_ps(w[r * w_stride + k]);
      for (int v = 0; v < V; ++v) acc[r][v] = _mm512_fmadd_ps(wb, x[v], acc[r][v]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) _mm512_store_ps(yt + r * yt_stride + 16 * v, acc[r][v]);
}

template <int R, int V>
struct FloatTile {
  static constexpr FloatGemmKernel run = kernel<R, V>;
};

}  // namespace

void prepare_float_gemm(const MatmulCall& call, int64_t panel_begin, int64_t panel_end) {
  prepare_float_panels<FloatPanels>(call, panel_begin, panel_end);
}

void compute_float_gemm(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  constexpr auto pick = pick_tile_kernel<FloatGemmKernel, FloatTile, kRowTile, FloatPanels::kMaxVecs>;
  compute_float_gemm_rows<Simd, FloatPanels, kRowTile, kRowBlock, kChunk, pick>(call, row_begin, row_end, row_converters());
}

}  // namespace morphserve::matmul_detail::avx512
