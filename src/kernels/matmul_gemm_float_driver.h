#pragma once
// The float-weight (F32 / F16 / BF16) GEMM that avx2/ and avx512/matmul_gemm_float.cpp
// instantiate with their own register kernel, used when many tokens share the weights (prefill).
// Include only from those files: everything is a template over the ISA traits S (kernels/*/simd.h),
// so each level's instantiations are its own, compiled with its flags.
//
// Activations: tokens in panels of up to kMaxVecs vectors of S::kLanes tokens, each panel
// transposed to [k][token], so one vector load gives kLanes tokens' values at one k.
//
// Blocking: a thread walks its rows in blocks of kRowBlock; for each block and each K chunk of
// kChunk columns it converts the weights once to fp32 (F16/BF16; F32 is read in place), then runs
// every token panel over every row tile of kRowTile rows, so the weights come from DRAM once per
// call however many tokens there are. Partial sums across K chunks live in a per-thread transposed
// output block that is written to y at the end of the row block. While the kernels run on one
// chunk, the next chunk's weights are prefetched a slice per row tile.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/matmul_impl.h"
#include "kernels/tile_kernel_table.h"
#include "kernels/thread_scratch.h"

namespace morphserve::matmul_detail {

template <class S, int kMaxVecsParam>
struct FloatPanelsOf {
  static constexpr int kMaxVecs = kMaxVecsParam;
  static constexpr int kLanes = S::kLanes;
  static constexpr int64_t kPanelTokens = int64_t{kLanes} * kMaxVecs;
  int64_t n_tokens = 0;
  int64_t cols = 0;
  int64_t n_panels = 0;
  float* base = nullptr;

  FloatPanelsOf(std::byte* data, int64_t n, int64_t k)
      : n_tokens(n), cols(k), n_panels((n + kPanelTokens - 1) / kPanelTokens), base(reinterpret_cast<float*>(data)) {}
  static size_t bytes(int64_t n, int64_t k) {
    return static_cast<size_t>((n + kPanelTokens - 1) / kPanelTokens * k * kPanelTokens) * sizeof(float);
  }
  int vecs(int64_t p) const {
    const int64_t left = n_tokens - p * kPanelTokens;
    return static_cast<int>(left >= kPanelTokens ? kMaxVecs : (left + kLanes - 1) / kLanes);
  }
  float* panel(int64_t p) const { return base + p * cols * kPanelTokens; }
};

// Where the GEMM kernels fetch the next weight chunk while they compute on the current one: rows
// [begin, end) of the next chunk, `bytes` from `offset` in each row. Issued a slice at a time from
// the kernel loop (prefetcht1, into L2), so the conversion/unpack of the next chunk finds its
// weights in L2 instead of stalling on DRAM.
template <class S>
struct NextWeightChunk {
  const MatrixView* w = nullptr;
  int64_t row_begin = 0;
  int64_t rows = 0;
  size_t offset = 0;
  size_t bytes = 0;

  // Prefetches the `slice`-th of `slices` equal parts of the chunk's rows.
  void prefetch(int64_t slice, int64_t slices) const {
    if (!w || rows == 0) return;
    for (int64_t r = rows * slice / slices; r < rows * (slice + 1) / slices; ++r) {
      const std::byte* p = w->row(row_begin + r) + offset;
      for (size_t b = 0; b < bytes; b += 64) __builtin_prefetch(p + b, 0, 2);
    }
  }
};

// Fills panels [panel_begin, panel_end) from call.x, padding tokens zero.
template <class Panels>
void prepare_float_panels(const MatmulCall& call, int64_t panel_begin, int64_t panel_end) {
  const Panels panels(call.acts, call.n_tokens, call.w.cols);
  const int64_t cols = call.w.cols;
  constexpr int64_t kBlock = 64;  // k rows written per pass: 64 × 256 B stays in L1
  for (int64_t p = panel_begin; p < panel_end; ++p) {
    float* xt = panels.panel(p);
    const int64_t width = int64_t{Panels::kLanes} * panels.vecs(p);
    const int64_t t0 = p * Panels::kPanelTokens;
    const int64_t tokens = std::min<int64_t>(width, call.n_tokens - t0);
    for (int64_t k0 = 0; k0 < cols; k0 += kBlock) {
      const int64_t k1 = std::min(cols, k0 + kBlock);
      for (int64_t t = 0; t < width; ++t) {
        if (t < tokens) {
          const float* x = call.x + (t0 + t) * cols;
          for (int64_t k = k0; k < k1; ++k) xt[k * width + t] = x[k];
        } else {
          for (int64_t k = k0; k < k1; ++k) xt[k * width + t] = 0.0f;  // padding tokens
        }
      }
    }
  }
}

// The register kernel: acc[r][v] over k in [0, kc) for rows w + r·w_stride and panel xt of
// `width` floats per k; results to yt[r·yt_stride + kLanes·v ...], added to what is there when
// `accumulate`. pick(r, v) (a pick_tile_kernel, tile_kernel_table.h) returns the kernel for
// r ≤ kRowTile rows and v ≤ kMaxVecs vectors; conv is the level's row converters (F16/BF16 → F32).
using FloatGemmKernel = void (*)(const float* w, int64_t w_stride, const float* xt, int64_t width, int64_t kc,
                                 float* yt, int64_t yt_stride, bool accumulate);

template <class S, class Panels, int kRowTile, int64_t kRowBlock, int64_t kChunk, FloatGemmKernel (*pick)(int, int)>
void compute_float_gemm_rows(const MatmulCall& call, int64_t row_begin, int64_t row_end, const RowConverters& conv) {
  const Panels panels(call.acts, call.n_tokens, call.w.cols);
  const int64_t cols = call.w.cols;
  const int64_t padded_tokens = panels.n_panels * Panels::kPanelTokens;
  const bool convert = call.w.type != DType::F32;
  float* scratch = reinterpret_cast<float*>(
      thread_scratch<S>(static_cast<size_t>(kRowBlock * (kChunk + padded_tokens)) * sizeof(float)));
  float* w_chunk = scratch;
  float* yt = scratch + kRowBlock * kChunk;  // [row in block][padded token]

  for (int64_t rb = row_begin; rb < row_end; rb += kRowBlock) {
    const int64_t rows = std::min(kRowBlock, row_end - rb);
    for (int64_t k0 = 0; k0 < cols; k0 += kChunk) {
      const int64_t kc = std::min(kChunk, cols - k0);
      const float* w = nullptr;
      int64_t w_stride = 0;
      if (convert) {
        for (int64_t r = 0; r < rows; ++r) {
          const uint16_t* src = reinterpret_cast<const uint16_t*>(call.weight_row(rb + r)) + k0;
          float* dst = w_chunk + r * kChunk;
          if (call.w.type == DType::F16) {
            conv.f16_to_f32(src, dst, kc);
          } else {
            conv.bf16_to_f32(src, dst, kc);
          }
        }
        w = w_chunk;
        w_stride = kChunk;
      } else {
        w = reinterpret_cast<const float*>(call.weight_row(rb)) + k0;
        w_stride = cols;
      }
      // The chunk after this one: the next K chunk of this row block, or the next row block's first.
      NextWeightChunk<S> next;
      if (k0 + kChunk < cols || rb + kRowBlock < row_end) {
        const bool same_block = k0 + kChunk < cols;
        const int64_t next_k0 = same_block ? k0 + kChunk : 0;
        const size_t elem = call.w.type == DType::F32 ? 4 : 2;
        next = {&call.w, same_block ? rb : rb + kRowBlock,
                same_block ? rows : std::min(kRowBlock, row_end - rb - kRowBlock),
                static_cast<size_t>(next_k0) * elem, static_cast<size_t>(std::min(kChunk, cols - next_k0)) * elem};
      }
      const int64_t tiles = (rows + kRowTile - 1) / kRowTile;
      for (int64_t p = 0; p < panels.n_panels; ++p) {
        const int v = panels.vecs(p);
        const int64_t width = int64_t{Panels::kLanes} * v;
        const float* xt = panels.panel(p) + k0 * width;
        for (int64_t r = 0; r < rows; r += kRowTile) {
          if (p == 0) next.prefetch(r / kRowTile, tiles);
          const int rr = static_cast<int>(std::min<int64_t>(kRowTile, rows - r));
          pick(rr, v)(w + r * w_stride, w_stride, xt, width, kc, yt + r * padded_tokens + p * Panels::kPanelTokens,
                      padded_tokens, k0 > 0);
        }
      }
    }
    // The transposed block back into y (tokens × rows).
    for (int64_t t = 0; t < call.n_tokens; ++t) {
      float* y = call.y + t * call.w.rows + rb;
      for (int64_t r = 0; r < rows; ++r) y[r] = yt[r * padded_tokens + t];
    }
  }
}

}  // namespace morphserve::matmul_detail
