// AVX-512 VNNI GEMM for Q8_0 / Q4_0 weights, used when many tokens share the weights (prefill).
//
// The vectors run over tokens, not over k: prepare_quant_gemm() transposes the int8 activations
// into panels where one zmm holds 4 consecutive k of 16 tokens, and the kernel broadcasts 4
// weight bytes of one row against it. One vpdpbusd then advances 16 (row, token) dot products by
// 4 elements, and no horizontal sums are needed. Weights are the unsigned operand (Q4_0 nibbles as
// they are, Q8_0 as w ^ 0x80 = w + 128); the panel's per-token corrections (−8·Σx or −128·Σx)
// start each block's int32 accumulator, as in the GEMV kernels.
//
// Register tile: R=4 rows × V=3 token vectors = 12 int32 block accumulators + 12 fp32 totals +
// 3 activation vectors + 1 broadcast. Per block: 96 vpdpbusd (the only port-0-bound op) against
// 12 each of convert, multiply and FMA that can issue on port 5.
//
// Blocking, scratch and the output transposition are gemm_quant_driver.h's, shared with the K-quants.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 AVX-512 intrinsics, see matmul_quant.cpp
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>

#include "kernels/avx512/gemm_quant_driver.h"
#include "kernels/avx512/matmul_avx512.h"

namespace morphserve::matmul_detail::avx512 {
namespace {

using gemm::kChunk;

template <int R, int V>
struct Tile {
  static void run(const uint8_t* w, const float* dw, int64_t nb, gemm::PanelSlice x, float* yt, int64_t yt_stride,
                  bool accumulate) {
    constexpr int64_t kWidth = 16 * V;
    __m512 acc[R][V];
    gemm::load_totals(acc, yt, yt_stride, accumulate);
    for (int64_t b = 0; b < nb; ++b) {
      __m512i dot[R][V];
      for (int v = 0; v < V; ++v) {
        const __m512i c = _mm512_load_si512(x.corr + b * kWidth + 16 * v);
        for (int r = 0; r < R; ++r) dot[r][v] = c;
      }
      gemm::dot_steps<0, 8>(dot, w, x.xq, b);
      for (int v = 0; v < V; ++v) {
        const __m512 dxv = _mm512_load_ps(x.dx + b * kWidth + 16 * v);
        for (int r = 0; r < R; ++r) {
          const __m512 scale = _mm512_mul_ps(_mm512_set1_ps(dw[r * (kChunk / 32) + b]), dxv);
          acc[r][v] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[r][v]), scale, acc[r][v]);
        }
      }
    }
    gemm::store_totals(acc, yt, yt_stride);
  }
};

// Q4_0 and Q8_0 in the driver's terms: one scale per block, one correction array.
struct LegacyFormat {
  static constexpr int kScalesPerBlock = 1;
  static constexpr int kCorrArrays = 1;
  static gemm::Kernel pick(int r, int v) { return gemm::pick_kernel<Tile>(r, v); }

  static void unpack(const MatmulCall& call, int64_t row0, int64_t rows, int64_t b0, int64_t nb, gemm::UnpackedChunk out) {
    const __m128i nibble = _mm_set1_epi8(0x0f);
    const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
    for (int64_t r = 0; r < rows; ++r) {
      uint8_t* q = out.q + r * kChunk;
      float* d = out.d + r * (kChunk / 32);
      if (call.w.type == DType::Q4_0) {
        const BlockQ4_0* blocks = reinterpret_cast<const BlockQ4_0*>(call.weight_row(row0 + r)) + b0;
        for (int64_t b = 0; b < nb; ++b) {
          const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks[b].qs));
          _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * 32), _mm_and_si128(raw, nibble));
          _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * 32 + 16), _mm_and_si128(_mm_srli_epi16(raw, 4), nibble));
          d[b] = _cvtsh_ss(blocks[b].d);
        }
      } else {
        const BlockQ8_0* blocks = reinterpret_cast<const BlockQ8_0*>(call.weight_row(row0 + r)) + b0;
        for (int64_t b = 0; b < nb; ++b) {
          const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blocks[b].qs));
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b * 32), _mm256_xor_si256(raw, flip));
          d[b] = _cvtsh_ss(blocks[b].d);
        }
      }
    }
  }
};

}  // namespace

void prepare_quant_gemm(const MatmulCall& call, int64_t panel_begin, int64_t panel_end) {
  const int32_t offset = call.w.type == DType::Q4_0 ? 8 : 128;
  gemm::prepare_panels(call, panel_begin, panel_end, LegacyFormat::kCorrArrays,
                       [offset](const int8_t*, float, int32_t sum, int32_t* const* c) { *c[0] = -offset * sum; });
}

void compute_quant_gemm(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  gemm::compute<LegacyFormat>(call, row_begin, row_end);
}

}  // namespace morphserve::matmul_detail::avx512
