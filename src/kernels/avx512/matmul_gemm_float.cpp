// AVX-512 GEMM for F32 / F16 / BF16 weights, used when many tokens share the weights (prefill).
//
// Register tile: R weight rows × V token vectors (16 tokens each) of fp32 accumulators. At each k
// the kernel loads V vectors of the transposed activation panel and broadcasts one weight per row:
// R·V FMAs for V + R loads. R=6, V=4 uses 24 accumulators + 4 activations + 1 broadcast of the
// 32 zmm registers, and needs 10 loads per 24 FMAs (the core sustains 2 loads and 2 FMAs a cycle).
//
// Blocking: a thread walks its rows in blocks of kRowBlock; for each block and each K chunk of
// kChunk columns it converts the weights once to fp32 (F16/BF16; F32 is read in place), then runs
// every token panel over every row tile. The converted chunk (96×512×4 = 192 KB) and the panel
// slice the kernel streams (64 tokens × 512 × 4 = 128 KB) both stay in the 1 MB L2, so the weights
// come from DRAM once per call however many tokens there are. Partial sums across K chunks live
// in a per-thread transposed output block that is written to y at the end of the row block.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 AVX-512 intrinsics, see matmul_quant.cpp
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>

#include "core/aligned_buffer.h"
#include "kernels/avx512/matmul_avx512.h"

namespace morphserve::matmul_detail::avx512 {
namespace {

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

using Kernel = void (*)(const float*, int64_t, const float*, int64_t, int64_t, float*, int64_t, bool);

template <int R>
Kernel pick_v(int v) {
  switch (v) {
    case 1: return kernel<R, 1>;
    case 2: return kernel<R, 2>;
    case 3: return kernel<R, 3>;
    default: return kernel<R, 4>;
  }
}

Kernel pick(int r, int v) {
  switch (r) {
    case 1: return pick_v<1>(v);
    case 2: return pick_v<2>(v);
    case 3: return pick_v<3>(v);
    case 4: return pick_v<4>(v);
    case 5: return pick_v<5>(v);
    default: return pick_v<6>(v);
  }
}

// Per-thread scratch: the converted weight chunk and the transposed output block.
float* thread_scratch(size_t floats) {
  thread_local AlignedBuffer buffer;
  const size_t bytes = floats * sizeof(float);
  if (buffer.size() < bytes) buffer = AlignedBuffer(bytes);
  return buffer.as<float>();
}

}  // namespace

void prepare_float_gemm(const MatmulCall& call, int64_t panel_begin, int64_t panel_end) {
  const FloatPanels panels(call.acts, call.n_tokens, call.w.cols);
  const int64_t cols = call.w.cols;
  constexpr int64_t kBlock = 64;  // k rows written per pass: 64 × 256 B stays in L1
  for (int64_t p = panel_begin; p < panel_end; ++p) {
    float* xt = panels.panel(p);
    const int64_t width = 16 * panels.vecs(p);
    const int64_t t0 = p * FloatPanels::kPanelTokens;
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

void compute_float_gemm(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  const FloatPanels panels(call.acts, call.n_tokens, call.w.cols);
  const int64_t cols = call.w.cols;
  const int64_t padded_tokens = panels.n_panels * FloatPanels::kPanelTokens;
  const bool convert = call.w.type != DType::F32;
  float* scratch = thread_scratch(static_cast<size_t>(kRowBlock * (kChunk + padded_tokens)));
  float* w_chunk = scratch;
  float* yt = scratch + kRowBlock * kChunk;  // [row in block][padded token]
  const RowConverters& conv = row_converters();

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
      NextChunk next;
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
        const int64_t width = 16 * v;
        const float* xt = panels.panel(p) + k0 * width;
        for (int64_t r = 0; r < rows; r += kRowTile) {
          if (p == 0) next.prefetch(r / kRowTile, tiles);
          const int rr = static_cast<int>(std::min<int64_t>(kRowTile, rows - r));
          pick(rr, v)(w + r * w_stride, w_stride, xt, width, kc, yt + r * padded_tokens + p * FloatPanels::kPanelTokens,
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

}  // namespace morphserve::matmul_detail::avx512
