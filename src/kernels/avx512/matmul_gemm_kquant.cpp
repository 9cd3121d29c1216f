// AVX-512 VNNI GEMM for the K-quant weights (Q4_K, Q5_K, Q6_K), used when many tokens share the
// weights (prefill). The same scheme as the Q8_0/Q4_0 GEMM (matmul_gemm_quant.cpp, driver in
// gemm_quant_driver.h): a row block's K chunk is unpacked once to unsigned level bytes in k order,
// broadcast 4 at a time against int8 activation panels of 16 tokens per zmm with vpdpbusd.
//
// What differs is the scales. Per 32-weight activation block:
// - Q4_K/Q5_K: one sub-block, w = d·sc·q − dmin·m with q in 0..15 (0..31). The block's integer dot
//   Σq·x starts at 0; the total takes d·sc·xd times it plus (−dmin·m) times the token's xd·Σx,
//   which the panel holds as a float correction. Scales per block: (d·sc, −dmin·m).
// - Q6_K: two 16-weight sub-blocks, w = d·sc·(q − 32) with q in 0..63. Each half's dot starts at
//   −32·Σx of that half (the panel's two correction arrays) and gets its own d·sc·xd. Scales per
//   block: (d·sc₀, d·sc₁).
// Integer parts stay exact (a Q6_K half at most 63·127·16 < 2^17, a Q5_K block 31·127·32 < 2^17).
//
// Register tile R=4 × V=3 as for Q4_0: 12 int32 dots + 12 fp32 totals + 3 activation vectors + 1
// broadcast. Per block 96 vpdpbusd against 24 FMAs (Q4_K/Q5_K: the min term; Q6_K: two halves).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 AVX-512 intrinsics, see matmul_quant.cpp
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <bit>
#include <cstddef>
#include <type_traits>

#include "kernels/avx512/gemm_quant_driver.h"
#include "kernels/avx512/kquant_scales.h"
#include "kernels/avx512/matmul_avx512.h"
#include "kernels/q6k_levels.h"

namespace morphserve::matmul_detail::avx512 {
namespace {

using gemm::kChunk;
constexpr int64_t kScaleStride = kChunk / 32 * 2;  // floats per unpacked row: two per block
constexpr int64_t kBlocksPerSuper = kKQuantBlock / 32;

// Q4_K/Q5_K tile: one integer dot per block, then d·sc·xd·dot − dmin·m·(xd·Σx).
template <int R, int V>
struct KTileMin {
  static void run(const uint8_t* w, const float* dw, int64_t nb, gemm::PanelSlice x, float* yt, int64_t yt_stride,
                  bool accumulate) {
    constexpr int64_t kWidth = 16 * V;
    __m512 acc[R][V];
    gemm::load_totals(acc, yt, yt_stride, accumulate);
    for (int64_t b = 0; b < nb; ++b) {
      __m512i dot[R][V];
      for (int r = 0; r < R; ++r)
        for (int v = 0; v < V; ++v) dot[r][v] = _mm512_setzero_si512();
      gemm::dot_steps<0, 8>(dot, w, x.xq, b);
      for (int v = 0; v < V; ++v) {
        const __m512 dxv = _mm512_load_ps(x.dx + b * kWidth + 16 * v);
        const __m512 sxv = _mm512_castsi512_ps(_mm512_load_si512(x.corr + b * kWidth + 16 * v));
        for (int r = 0; r < R; ++r) {
          const __m512 scale = _mm512_mul_ps(_mm512_set1_ps(dw[r * kScaleStride + 2 * b]), dxv);
          acc[r][v] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[r][v]), scale, acc[r][v]);
          acc[r][v] = _mm512_fmadd_ps(_mm512_set1_ps(dw[r * kScaleStride + 2 * b + 1]), sxv, acc[r][v]);
        }
      }
    }
    gemm::store_totals(acc, yt, yt_stride);
  }
};

// Q6_K tile: two half-block dots, each started at its −32·Σx and scaled by its own d·sc·xd.
template <int R, int V>
struct KTileHalves {
  static void run(const uint8_t* w, const float* dw, int64_t nb, gemm::PanelSlice x, float* yt, int64_t yt_stride,
                  bool accumulate) {
    constexpr int64_t kWidth = 16 * V;
    __m512 acc[R][V];
    gemm::load_totals(acc, yt, yt_stride, accumulate);
    for (int64_t b = 0; b < nb; ++b) {
      for (int h = 0; h < 2; ++h) {
        const int32_t* corr = h == 0 ? x.corr : x.corr2;
        __m512i dot[R][V];
        for (int v = 0; v < V; ++v) {
          const __m512i c = _mm512_load_si512(corr + b * kWidth + 16 * v);
          for (int r = 0; r < R; ++r) dot[r][v] = c;
        }
        if (h == 0) {
          gemm::dot_steps<0, 4>(dot, w, x.xq, b);
        } else {
          gemm::dot_steps<4, 8>(dot, w, x.xq, b);
        }
        for (int v = 0; v < V; ++v) {
          const __m512 dxv = _mm512_load_ps(x.dx + b * kWidth + 16 * v);
          for (int r = 0; r < R; ++r) {
            const __m512 scale = _mm512_mul_ps(_mm512_set1_ps(dw[r * kScaleStride + 2 * b + h]), dxv);
            acc[r][v] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[r][v]), scale, acc[r][v]);
          }
        }
      }
    }
    gemm::store_totals(acc, yt, yt_stride);
  }
};

// One Q4_K/Q5_K super-block's 256 levels in k order: sub-block 2j is the low nibbles of qs[32j..],
// 2j+1 the high ones; Q5_K adds 16 where bit s of qh[l] is set (sub-block s, weight l).
template <typename Block>
void unpack_q45_levels(const Block& block, uint8_t* q) {
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  for (int j = 0; j < 4; ++j) {
    const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block.qs + 32 * j));
    __m256i lo = _mm256_and_si256(raw, nibble);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), nibble);
    if constexpr (std::is_same_v<Block, BlockQ5_K>) {
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block.qh));
      const __m256i sixteen = _mm256_set1_epi8(16);
      lo = _mm256_mask_add_epi8(lo, _mm256_test_epi8_mask(qh, _mm256_set1_epi8(static_cast<char>(1 << (2 * j)))), lo,
                                sixteen);
      hi = _mm256_mask_add_epi8(hi, _mm256_test_epi8_mask(qh, _mm256_set1_epi8(static_cast<char>(1 << (2 * j + 1)))), hi,
                                sixteen);
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 64 * j), lo);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 64 * j + 32), hi);
  }
}

// (d·sc_b, −dmin·m_b) for the super-block's eight blocks, interleaved.
template <typename Block>
void unpack_q45_scales(const Block& block, float* out) {
  const __m512 f = q45_scales_mins(block.scales);  // [sc0..sc7, m0..m7]
  const __m512 mult = _mm512_insertf32x8(_mm512_set1_ps(_cvtsh_ss(block.d)), _mm256_set1_ps(-_cvtsh_ss(block.dmin)), 1);
  const __m512i interleave = _mm512_set_epi32(15, 7, 14, 6, 13, 5, 12, 4, 11, 3, 10, 2, 9, 1, 8, 0);
  _mm512_storeu_ps(out, _mm512_permutexvar_ps(interleave, _mm512_mul_ps(f, mult)));
}

// d·sc_i for the 16 sub-blocks, which is (d·sc₀, d·sc₁) per block already.
void unpack_q6_scales(const BlockQ6_K& block, float* out) {
  const __m128i sc = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block.scales));
  _mm512_storeu_ps(out, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(sc)), _mm512_set1_ps(_cvtsh_ss(block.d))));
}

template <typename Block>
struct KFormat {
  static constexpr int kScalesPerBlock = 2;
  static constexpr int kCorrArrays = std::is_same_v<Block, BlockQ6_K> ? 2 : 1;
  static gemm::Kernel pick(int r, int v) {
    if constexpr (std::is_same_v<Block, BlockQ6_K>) {
      return gemm::pick_kernel<KTileHalves>(r, v);
    } else {
      return gemm::pick_kernel<KTileMin>(r, v);
    }
  }

  // b0 and nb are in blocks of 32; chunks start and end on super-blocks (kChunk and cols are
  // multiples of 256).
  static void unpack(const MatmulCall& call, int64_t row0, int64_t rows, int64_t b0, int64_t nb, gemm::UnpackedChunk out) {
    for (int64_t r = 0; r < rows; ++r) {
      const Block* blocks = reinterpret_cast<const Block*>(call.weight_row(row0 + r)) + b0 / kBlocksPerSuper;
      uint8_t* q = out.q + r * kChunk;
      float* d = out.d + r * kScaleStride;
      for (int64_t i = 0; i < nb / kBlocksPerSuper; ++i) {
        if constexpr (std::is_same_v<Block, BlockQ6_K>) {
          unpack_q6k_levels<kernel_impl::avx512::Simd>(blocks[i], q + i * kKQuantBlock);
          unpack_q6_scales(blocks[i], d + i * 16);
        } else {
          unpack_q45_levels(blocks[i], q + i * kKQuantBlock);
          unpack_q45_scales(blocks[i], d + i * 16);
        }
      }
    }
  }
};

}  // namespace

int kquant_corr_arrays(DType type) { return type == DType::Q6_K ? 2 : 1; }

void prepare_kquant_gemm(const MatmulCall& call, int64_t panel_begin, int64_t panel_end) {
  if (call.w.type == DType::Q6_K) {
    gemm::prepare_panels(call, panel_begin, panel_end, 2, [](const int8_t* q, float, int32_t sum, int32_t* const* c) {
      int32_t first = 0;
      for (int l = 0; l < 16; ++l) first += q[l];
      *c[0] = -32 * first;
      *c[1] = -32 * (sum - first);
    });
  } else {
    gemm::prepare_panels(call, panel_begin, panel_end, 1, [](const int8_t*, float d, int32_t sum, int32_t* const* c) {
      *c[0] = std::bit_cast<int32_t>(d * static_cast<float>(sum));  // xd·Σx, read back as a float
    });
  }
}

void compute_kquant_gemm(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  switch (call.w.type) {
    case DType::Q4_K: gemm::compute<KFormat<BlockQ4_K>>(call, row_begin, row_end); break;
    case DType::Q5_K: gemm::compute<KFormat<BlockQ5_K>>(call, row_begin, row_end); break;
    default: gemm::compute<KFormat<BlockQ6_K>>(call, row_begin, row_end); break;
  }
}

}  // namespace morphserve::matmul_detail::avx512
