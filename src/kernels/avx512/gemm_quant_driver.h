#pragma once
// Private to the AVX-512 integer GEMM files (matmul_gemm_quant.cpp: Q8_0/Q4_0;
// matmul_gemm_kquant.cpp: Q4_K/Q5_K/Q6_K): the blocking they share. A weight format supplies how
// a row block's K chunk unpacks to unsigned level bytes plus fp32 scales, and its register-tile
// kernels; this driver owns the loop order, the scratch, the next chunk's prefetch and the
// transposed output.
//
// Blocking: a thread walks its rows in blocks of kRowBlock; for each K chunk it unpacks the block's
// weights once (64 rows × 2048 ≈ 128 KB, in L2) and runs every token panel over every row tile;
// partial sums across chunks live in a per-thread transposed output [row][token].
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/avx512/matmul_avx512.h"
#include "kernels/thread_scratch.h"
#include "kernels/tile_kernel_table.h"

namespace morphserve::matmul_detail::avx512::gemm {

constexpr int kRowTile = 4;
constexpr int64_t kRowBlock = 16 * kRowTile;
constexpr int64_t kChunk = 2048;  // columns: a multiple of 32 and of a K-quant super-block (256)
static_assert(kChunk % kKQuantBlock == 0);

// One row block's weights for one K chunk: unsigned level bytes [row][kChunk] in k order, and
// scales_per_block fp32 values per row and block of 32 ([row][kChunk/32 · scales_per_block]).
struct UnpackedChunk {
  uint8_t* q;
  float* d;
};

// The activations of one token panel from the chunk's first block on (QuantPanels' arrays).
struct PanelSlice {
  const int8_t* xq;
  const float* dx;
  const int32_t* corr;   // the first correction array
  const int32_t* corr2;  // the second (formats with two), else null
};

// One register tile: rows r..r+R of the unpacked chunk (w, dw at that row) against V token vectors
// of a panel, over nb blocks; adds to (accumulate) or overwrites yt [R][yt_stride].
using Kernel = void (*)(const uint8_t* w, const float* dw, int64_t nb, PanelSlice x, float* yt, int64_t yt_stride,
                        bool accumulate);

// The register tiles' inner step, shared by every format: for blocks of 32 at b, the 4-weight
// groups J0..J1-1 (8 per block) of rows 0..R-1, each broadcast against V token vectors of the
// panel, accumulated into dot[r][v] with vpdpbusd.
template <int J0, int J1, int R, int V>
inline void dot_steps(__m512i (&dot)[R][V], const uint8_t* w, const int8_t* xq, int64_t b) {
  constexpr int64_t kWidth = 16 * V;
  for (int j = J0; j < J1; ++j) {
    __m512i xv[V];
    for (int v = 0; v < V; ++v) xv[v] = _mm512_load_si512(xq + ((b * 8 + j) * kWidth + 16 * v) * 4);
    for (int r = 0; r < R; ++r) {
      int32_t four;
      std::memcpy(&four, w + r * kChunk + b * 32 + j * 4, 4);
      const __m512i wb = _mm512_set1_epi32(four);
      for (int v = 0; v < V; ++v) dot[r][v] = _mm512_dpbusd_epi32(dot[r][v], wb, xv[v]);
    }
  }
}

// A tile's fp32 totals: continued from yt (a later K chunk) or started at zero, and stored back.
template <int R, int V>
inline void load_totals(__m512 (&acc)[R][V], const float* yt, int64_t yt_stride, bool accumulate) {
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = accumulate ? _mm512_load_ps(yt + r * yt_stride + 16 * v) : _mm512_setzero_ps();
}
template <int R, int V>
inline void store_totals(const __m512 (&acc)[R][V], float* yt, int64_t yt_stride) {
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) _mm512_store_ps(yt + r * yt_stride + 16 * v, acc[r][v]);
}

// Picks a kernel instantiation for r rows (1..4) and v vectors (1..3).
template <template <int, int> class K>
Kernel pick_kernel(int r, int v) {
  return pick_tile_kernel<Kernel, K, 4, 3>(r, v);
}

// Fills panels [panel_begin, panel_end): quantizes each token's blocks (quantize_act_block), lays
// the int8 values out for vpdpbusd, and lets `corrections(q, d, sum, c)` write the format's
// correction words for one block and token (c[i] points at array i's slot).
template <typename Corrections>
void prepare_panels(const MatmulCall& call, int64_t panel_begin, int64_t panel_end, int corr_arrays,
                    Corrections corrections) {
  const QuantPanels panels(call.acts, call.n_tokens, call.w.cols, corr_arrays);
  const int64_t cols = call.w.cols;
  const int64_t nb = cols / 32;
  for (int64_t p = panel_begin; p < panel_end; ++p) {
    const int64_t width = panels.width(p);
    const int64_t t0 = p * QuantPanels::kPanelTokens;
    const int64_t tokens = std::min(width, call.n_tokens - t0);
    int8_t* qs = panels.qs(p);
    float* d = panels.d(p);
    if (tokens < width) std::memset(qs, 0, static_cast<size_t>(panels.panel_bytes));  // padding tokens
    for (int64_t t = 0; t < tokens; ++t) {
      const float* x = call.x + (t0 + t) * cols;
      for (int64_t b = 0; b < nb; ++b) {
        alignas(32) int8_t q[32];
        int32_t sum;
        quantize_act_block(x + b * 32, q, d + b * width + t, &sum);
        int32_t* c[2] = {panels.corr(p, 0) + b * width + t, corr_arrays > 1 ? panels.corr(p, 1) + b * width + t : nullptr};
        corrections(q, d[b * width + t], sum, c);
        for (int j = 0; j < 8; ++j) std::memcpy(qs + ((b * 8 + j) * width + t) * 4, q + j * 4, 4);
      }
    }
  }
}

// Format: static constexpr int kScalesPerBlock; static constexpr int kCorrArrays;
// static void unpack(const MatmulCall&, int64_t row0, int64_t rows, int64_t b0, int64_t nb, UnpackedChunk);
// static Kernel pick(int r, int v).
template <typename Format>
void compute(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  const QuantPanels panels(call.acts, call.n_tokens, call.w.cols, Format::kCorrArrays);
  const int64_t nb_total = call.w.cols / 32;
  const int64_t padded_tokens = panels.n_panels * QuantPanels::kPanelTokens;
  constexpr int64_t kScaleFloats = kChunk / 32 * Format::kScalesPerBlock;
  std::byte* scratch = thread_scratch<kernel_impl::avx512::Simd>(static_cast<size_t>(kRowBlock * (kChunk + kScaleFloats * 4 + padded_tokens * 4)));
  const UnpackedChunk chunk{reinterpret_cast<uint8_t*>(scratch), reinterpret_cast<float*>(scratch + kRowBlock * kChunk)};
  float* yt = reinterpret_cast<float*>(scratch + kRowBlock * (kChunk + kScaleFloats * 4));

  for (int64_t rb = row_begin; rb < row_end; rb += kRowBlock) {
    const int64_t rows = std::min(kRowBlock, row_end - rb);
    for (int64_t b0 = 0; b0 < nb_total; b0 += kChunk / 32) {
      const int64_t nb = std::min(kChunk / 32, nb_total - b0);
      Format::unpack(call, rb, rows, b0, nb, chunk);
      // The chunk after this one: the next K chunk of this row block, or the next row block's first.
      NextChunk next;
      if (b0 + kChunk / 32 < nb_total || rb + kRowBlock < row_end) {
        const bool same_block = b0 + kChunk / 32 < nb_total;
        const int64_t next_b0 = same_block ? b0 + kChunk / 32 : 0;
        // Chunk boundaries are whole blocks (and super-blocks), so these byte counts are exact.
        next = {&call.w, same_block ? rb : rb + kRowBlock,
                same_block ? rows : std::min(kRowBlock, row_end - rb - kRowBlock), dtype_row_bytes(call.w.type, next_b0 * 32),
                dtype_row_bytes(call.w.type, std::min(kChunk / 32, nb_total - next_b0) * 32)};
      }
      const int64_t tiles = (rows + kRowTile - 1) / kRowTile;
      for (int64_t p = 0; p < panels.n_panels; ++p) {
        const int v = panels.vecs(p);
        const int64_t width = 16 * v;
        const PanelSlice x{panels.qs(p) + b0 * 32 * width, panels.d(p) + b0 * width, panels.corr(p, 0) + b0 * width,
                           Format::kCorrArrays > 1 ? panels.corr(p, 1) + b0 * width : nullptr};
        for (int64_t r = 0; r < rows; r += kRowTile) {
          if (p == 0) next.prefetch(r / kRowTile, tiles);
          const int rr = static_cast<int>(std::min<int64_t>(kRowTile, rows - r));
          Format::pick(rr, v)(chunk.q + r * kChunk, chunk.d + r * kScaleFloats, nb, x,
                              yt + r * padded_tokens + p * QuantPanels::kPanelTokens, padded_tokens, b0 > 0);
        }
      }
    }
    for (int64_t t = 0; t < call.n_tokens; ++t) {
      float* y = call.y + t * call.w.rows + rb;
      for (int64_t r = 0; r < rows; ++r) y[r] = yt[r * padded_tokens + t];
    }
  }
}

}  // namespace morphserve::matmul_detail::avx512::gemm
