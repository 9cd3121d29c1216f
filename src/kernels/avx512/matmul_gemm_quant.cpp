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
// Blocking: a thread walks its rows in blocks of kRowBlock; for each K chunk it unpacks the block's
// weights once to bytes + fp32 scales (64 rows × 2048 ≈ 128 KB, in L2) and runs every token
// panel over every row tile; partial sums across chunks live in a per-thread transposed output.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 AVX-512 intrinsics, see matmul_quant.cpp
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "core/aligned_buffer.h"
#include "kernels/avx512/matmul_avx512.h"

namespace morphserve::matmul_detail::avx512 {
namespace {

constexpr int kRowTile = 4;
constexpr int64_t kRowBlock = 16 * kRowTile;
constexpr int64_t kChunk = 2048;  // columns, a multiple of 32

// Weights of one row block and K chunk: unsigned bytes [row][k] and fp32 scales [row][block].
struct UnpackedChunk {
  uint8_t* q;
  float* d;
};

template <int R, int V>
void kernel(const uint8_t* w, const float* dw, int64_t nb, const int8_t* xq, const float* dx, const int32_t* corr,
            float* yt, int64_t yt_stride, bool accumulate) {
  constexpr int64_t kWidth = 16 * V;
  __m512 acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = accumulate ? _mm512_load_ps(yt + r * yt_stride + 16 * v) : _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    __m512i dot[R][V];
    for (int v = 0; v < V; ++v) {
      const __m512i c = _mm512_load_si512(corr + b * kWidth + 16 * v);
      for (int r = 0; r < R; ++r) dot[r][v] = c;
    }
    for (int j = 0; j < 8; ++j) {
      __m512i x[V];
      for (int v = 0; v < V; ++v) x[v] = _mm512_load_si512(xq + ((b * 8 + j) * kWidth + 16 * v) * 4);
      for (int r = 0; r < R; ++r) {
        int32_t four;
        std::memcpy(&four, w + r * kChunk + b * 32 + j * 4, 4);
        const __m512i wb = _mm512_set1_epi32(four);
        for (int v = 0; v < V; ++v) dot[r][v] = _mm512_dpbusd_epi32(dot[r][v], wb, x[v]);
      }
    }
    for (int v = 0; v < V; ++v) {
      const __m512 dxv = _mm512_load_ps(dx + b * kWidth + 16 * v);
      for (int r = 0; r < R; ++r) {
        const __m512 scale = _mm512_mul_ps(_mm512_set1_ps(dw[r * (kChunk / 32) + b]), dxv);
        acc[r][v] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[r][v]), scale, acc[r][v]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) _mm512_store_ps(yt + r * yt_stride + 16 * v, acc[r][v]);
}

using Kernel = void (*)(const uint8_t*, const float*, int64_t, const int8_t*, const float*, const int32_t*, float*,
                        int64_t, bool);

template <int R>
Kernel pick_v(int v) {
  switch (v) {
    case 1: return kernel<R, 1>;
    case 2: return kernel<R, 2>;
    default: return kernel<R, 3>;
  }
}

Kernel pick(int r, int v) {
  switch (r) {
    case 1: return pick_v<1>(v);
    case 2: return pick_v<2>(v);
    case 3: return pick_v<3>(v);
    default: return pick_v<4>(v);
  }
}

void unpack_rows(const MatmulCall& call, int64_t row0, int64_t rows, int64_t b0, int64_t nb, UnpackedChunk out) {
  const __m128i nibble = _mm_set1_epi8(0x0f);
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* q = out.q + r * kChunk;
    float* d = out.d + r * (kChunk / 32);
    if (call.w.type == DType::Q4_0) {
      const BlockQ4_0* blocks = reinterpret_cast<const BlockQ4_0*>(call.w.row(row0 + r)) + b0;
      for (int64_t b = 0; b < nb; ++b) {
        const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks[b].qs));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * 32), _mm_and_si128(raw, nibble));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * 32 + 16), _mm_and_si128(_mm_srli_epi16(raw, 4), nibble));
        d[b] = _cvtsh_ss(blocks[b].d);
      }
    } else {
      const BlockQ8_0* blocks = reinterpret_cast<const BlockQ8_0*>(call.w.row(row0 + r)) + b0;
      for (int64_t b = 0; b < nb; ++b) {
        const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blocks[b].qs));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b * 32), _mm256_xor_si256(raw, flip));
        d[b] = _cvtsh_ss(blocks[b].d);
      }
    }
  }
}

std::byte* thread_scratch(size_t bytes) {
  thread_local AlignedBuffer buffer;
  if (buffer.size() < bytes) buffer = AlignedBuffer(bytes);
  return buffer.data();
}

}  // namespace

void prepare_quant_gemm(const MatmulCall& call, int64_t panel_begin, int64_t panel_end) {
  const QuantPanels panels(call.acts, call.n_tokens, call.w.cols);
  const int64_t cols = call.w.cols;
  const int64_t nb = cols / 32;
  const int32_t offset = call.w.type == DType::Q4_0 ? 8 : 128;
  for (int64_t p = panel_begin; p < panel_end; ++p) {
    const int64_t width = panels.width(p);
    const int64_t t0 = p * QuantPanels::kPanelTokens;
    const int64_t tokens = std::min(width, call.n_tokens - t0);
    int8_t* qs = panels.qs(p);
    float* d = panels.d(p);
    int32_t* corr = panels.corr(p);
    if (tokens < width) std::memset(qs, 0, static_cast<size_t>(panels.panel_bytes));  // padding tokens
    for (int64_t t = 0; t < tokens; ++t) {
      const float* x = call.x + (t0 + t) * cols;
      for (int64_t b = 0; b < nb; ++b) {
        alignas(32) int8_t q[32];
        int32_t sum;
        quantize_act_block(x + b * 32, q, d + b * width + t, &sum);
        corr[b * width + t] = -offset * sum;
        for (int j = 0; j < 8; ++j) std::memcpy(qs + ((b * 8 + j) * width + t) * 4, q + j * 4, 4);
      }
    }
  }
}

void compute_quant_gemm(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  const QuantPanels panels(call.acts, call.n_tokens, call.w.cols);
  const int64_t nb_total = call.w.cols / 32;
  const int64_t padded_tokens = panels.n_panels * QuantPanels::kPanelTokens;
  std::byte* scratch = thread_scratch(static_cast<size_t>(kRowBlock * (kChunk + kChunk / 32 * 4 + padded_tokens * 4)));
  const UnpackedChunk chunk{reinterpret_cast<uint8_t*>(scratch), reinterpret_cast<float*>(scratch + kRowBlock * kChunk)};
  float* yt = reinterpret_cast<float*>(scratch + kRowBlock * (kChunk + kChunk / 32 * 4));

  for (int64_t rb = row_begin; rb < row_end; rb += kRowBlock) {
    const int64_t rows = std::min(kRowBlock, row_end - rb);
    for (int64_t b0 = 0; b0 < nb_total; b0 += kChunk / 32) {
      const int64_t nb = std::min(kChunk / 32, nb_total - b0);
      unpack_rows(call, rb, rows, b0, nb, chunk);
      // The chunk after this one: the next K chunk of this row block, or the next row block's first.
      NextChunk next;
      if (b0 + kChunk / 32 < nb_total || rb + kRowBlock < row_end) {
        const bool same_block = b0 + kChunk / 32 < nb_total;
        const int64_t next_b0 = same_block ? b0 + kChunk / 32 : 0;
        const size_t block_bytes = dtype_block_bytes(call.w.type);
        next = {&call.w, same_block ? rb : rb + kRowBlock,
                same_block ? rows : std::min(kRowBlock, row_end - rb - kRowBlock), static_cast<size_t>(next_b0) * block_bytes,
                static_cast<size_t>(std::min(kChunk / 32, nb_total - next_b0)) * block_bytes};
      }
      const int64_t tiles = (rows + kRowTile - 1) / kRowTile;
      for (int64_t p = 0; p < panels.n_panels; ++p) {
        const int v = panels.vecs(p);
        const int64_t width = 16 * v;
        const int8_t* xq = panels.qs(p) + b0 * 32 * width;
        const float* dx = panels.d(p) + b0 * width;
        const int32_t* corr = panels.corr(p) + b0 * width;
        for (int64_t r = 0; r < rows; r += kRowTile) {
          if (p == 0) next.prefetch(r / kRowTile, tiles);
          const int rr = static_cast<int>(std::min<int64_t>(kRowTile, rows - r));
          pick(rr, v)(chunk.q + r * kChunk, chunk.d + r * (kChunk / 32), nb, xq, dx, corr,
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

}  // namespace morphserve::matmul_detail::avx512
