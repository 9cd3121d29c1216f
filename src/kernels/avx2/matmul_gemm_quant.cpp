// AVX2 GEMM for the quantized weights (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K), used when many tokens share
// the weights (prefill). The AVX-512 GEMM's scheme (avx512/gemm_quant_driver.h) without VNNI:
// activations are transposed into panels where one ymm holds 4 consecutive k of 8 tokens, a row
// block's K chunk is unpacked once to level bytes in k order plus two floats per block of 32, and
// the kernel broadcasts 4 weight bytes of one row against the panel. maddubs (u8×s8 → s16 pairs)
// then advances 8 (row, token) dot products by 4 elements with no horizontal sums; the dot form
// (matmul_quant.cpp) pays a convert, a scale and an FMA per block for every row and token, and
// re-unpacks each weight block for every pair of tokens.
//
// int16 accumulation: the pair sums of maddubs are added in int16 for as many 4-k steps as cannot
// overflow, then widened once with madd(·, 1). With activations in [−127, 127] a pair is at most
// 2·L·127 for levels up to L: Q4_0/Q4_K (L = 15) 8 steps (≤ 30480), Q5_K (31) 4, Q6_K (63) 2.
// Q8_0's levels are signed, so it takes the sign trick per step (|w| against sign(x, w), pairs
// ≤ 2·128·127) and widens every step.
//
// What each format adds to a block's integer dot (the panel's corrections, as in the AVX-512 GEMM):
//  - Q4_0: the dot starts at −8·Σx (the nibbles are q + 8); scale d·xd.
//  - Q8_0: nothing; scale d·xd.
//  - Q4_K/Q5_K: scale d·sc·xd, plus (−dmin·m) times the token's xd·Σx (a float correction).
//  - Q6_K: two 16-weight halves, each starting at −32·Σx of that half, each with its d·sc·xd.
//
// Register tile: 2 rows × 16 tokens (two ymm): 4 int16 sums, 4 int32 dots, 2 activation vectors,
// the broadcast and the ones; for calls of up to 8 tokens, 4 rows × 8 tokens (one ymm), the same
// count. The fp32 totals stay in the transposed output (in L1), updated once per block.
#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "kernels/avx2/kquant_scales.h"
#include "kernels/avx2/simd.h"
#include "kernels/matmul_impl.h"
#include "kernels/q6k_levels.h"
#include "kernels/thread_scratch.h"

namespace morphserve::matmul_detail::avx2 {
namespace {

// Token panels of two ymm of 8 tokens (2 rows × 16 tokens per register tile), or of one ymm for
// calls of up to 8 tokens (4 rows × 8 tokens): a 16-token panel would spend half or more of every
// maddubs on padding there.
constexpr int64_t kWidePanel = 16;
constexpr int64_t kNarrowPanel = 8;
constexpr int64_t panel_tokens_for(int64_t n_tokens) { return n_tokens <= kNarrowPanel ? kNarrowPanel : kWidePanel; }
constexpr int64_t kRowBlock = 32;   // rows unpacked together: 32 × kChunk bytes, in L2
constexpr int64_t kChunk = 2048;    // columns: a multiple of 32 and of a K-quant super-block
constexpr int64_t kScaleStride = kChunk / 32 * 2;  // floats per unpacked row: two per block
static_assert(kChunk % kKQuantBlock == 0);

// Quantized activations in token panels of `width` tokens (panel_tokens_for; the last padded with
// zero tokens). Per panel: int8 values as [k/4][token][4 bytes]; then [block][token] float scales;
// then two [block][token] arrays of 32-bit corrections, whose meaning is the format's (above).
struct Panels {
  int64_t n_tokens = 0;
  int64_t cols = 0;
  int64_t width = 0;
  int64_t n_panels = 0;
  int64_t panel_bytes = 0;
  std::byte* base = nullptr;

  Panels(std::byte* data, int64_t n, int64_t k)
      : n_tokens(n),
        cols(k),
        width(panel_tokens_for(n)),
        n_panels((n + width - 1) / width),
        panel_bytes(k * width + k / 32 * width * 4 * 3),
        base(data) {}
  static size_t bytes(int64_t n, int64_t k) {
    const Panels p(nullptr, n, k);
    return static_cast<size_t>(p.panel_bytes * p.n_panels);
  }
  int8_t* qs(int64_t p) const { return reinterpret_cast<int8_t*>(base + p * panel_bytes); }
  float* d(int64_t p) const { return reinterpret_cast<float*>(base + p * panel_bytes + cols * width); }
  int32_t* corr(int64_t p, int array) const {
    return reinterpret_cast<int32_t*>(base + p * panel_bytes + cols * width + cols / 32 * width * 4 * (1 + array));
  }
};

// How a format's integer dots are formed and scaled.
struct Traits {
  int halves;       // 1, or 2 for Q6_K's 16-weight halves
  int group_steps;  // 4-k steps summed in int16 before widening
  bool signed_w;    // Q8_0: signed levels, the sign trick
  bool min_term;    // Q4_K/Q5_K: −dmin·m times xd·Σx
  int corr_arrays;  // int32 corrections that start the dots (Q4_0: 1, Q6_K: 2)
};

constexpr Traits traits_of(DType type) {
  switch (type) {
    case DType::Q8_0: return {1, 1, true, false, 0};
    case DType::Q4_0: return {1, 8, false, false, 1};
    case DType::Q4_K: return {1, 8, false, true, 0};
    case DType::Q5_K: return {1, 4, false, true, 0};
    default: return {2, 2, false, false, 2};  // Q6_K
  }
}

inline int32_t load4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Rows 0..R-1 of the unpacked chunk (w: [row][kChunk] levels, dw: [row][kScaleStride] scales)
// against one panel of V vectors (8·V tokens) over nb blocks; adds into yt [R][yt_stride].
template <DType kType, int R, int V>
void tile(const uint8_t* w, const float* dw, int64_t nb, const int8_t* xq, const float* dx, const int32_t* c0,
          const int32_t* c1, float* yt, int64_t yt_stride) {
  constexpr Traits kT = traits_of(kType);
  constexpr int kStepsPerHalf = 8 / kT.halves;
  constexpr int64_t kWidth = 8 * V;  // the panel's tokens
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t b = 0; b < nb; ++b) {
    for (int h = 0; h < kT.halves; ++h) {
      __m256i dot[R][V];
      for (int v = 0; v < V; ++v) {
        __m256i start = _mm256_setzero_si256();
        if constexpr (kT.corr_arrays > 0) {
          start = _mm256_load_si256(reinterpret_cast<const __m256i*>((h == 0 ? c0 : c1) + b * kWidth + 8 * v));
        }
        for (int r = 0; r < R; ++r) dot[r][v] = start;
      }
      for (int g = 0; g < kStepsPerHalf; g += kT.group_steps) {
        __m256i sums[R][V];
        for (int r = 0; r < R; ++r)
          for (int v = 0; v < V; ++v) sums[r][v] = _mm256_setzero_si256();
        for (int s = 0; s < kT.group_steps; ++s) {
          const int64_t step = b * 8 + h * kStepsPerHalf + g + s;
          __m256i xv[V];
          for (int v = 0; v < V; ++v) {
            xv[v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(xq + (step * kWidth + 8 * v) * 4));
          }
          for (int r = 0; r < R; ++r) {
            const __m256i wb = _mm256_set1_epi32(load4(w + r * kChunk + step * 4));
            if constexpr (kT.signed_w) {
              const __m256i aw = _mm256_abs_epi8(wb);
              for (int v = 0; v < V; ++v) {
                sums[r][v] = _mm256_add_epi16(sums[r][v], _mm256_maddubs_epi16(aw, _mm256_sign_epi8(xv[v], wb)));
              }
            } else {
              for (int v = 0; v < V; ++v) sums[r][v] = _mm256_add_epi16(sums[r][v], _mm256_maddubs_epi16(wb, xv[v]));
            }
          }
        }
        for (int r = 0; r < R; ++r)
          for (int v = 0; v < V; ++v) dot[r][v] = _mm256_add_epi32(dot[r][v], _mm256_madd_epi16(sums[r][v], ones));
      }
      for (int v = 0; v < V; ++v) {
        const __m256 dxv = _mm256_load_ps(dx + b * kWidth + 8 * v);
        for (int r = 0; r < R; ++r) {
          float* y = yt + r * yt_stride + 8 * v;
          const __m256 scale = _mm256_mul_ps(_mm256_set1_ps(dw[r * kScaleStride + 2 * b + h]), dxv);
          _mm256_store_ps(y, _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[r][v]), scale, _mm256_load_ps(y)));
        }
      }
    }
    if constexpr (kT.min_term) {
      for (int v = 0; v < V; ++v) {
        const __m256 sx = _mm256_castsi256_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(c0 + b * kWidth + 8 * v)));
        for (int r = 0; r < R; ++r) {
          float* y = yt + r * yt_stride + 8 * v;
          _mm256_store_ps(y, _mm256_fmadd_ps(_mm256_set1_ps(dw[r * kScaleStride + 2 * b + 1]), sx, _mm256_load_ps(y)));
        }
      }
    }
  }
}

// One Q4_K/Q5_K super-block's 256 levels in k order (sub-block 2j: low nibbles of qs[32j..], 2j+1:
// the high ones; Q5_K adds 16 where bit s of qh[l] is set) and its (d·sc, −dmin·m) per block.
template <typename Block, bool kFifthBit>
void unpack_q45(const Block& block, uint8_t* q, float* d) {
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  for (int j = 0; j < 4; ++j) {
    const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block.qs + 32 * j));
    __m256i lo = _mm256_and_si256(raw, nibble);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), nibble);
    if constexpr (kFifthBit) {
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block.qh));
      const __m256i sixteen = _mm256_set1_epi8(16);
      const __m256i bit_lo = _mm256_set1_epi8(static_cast<char>(1 << (2 * j)));
      const __m256i bit_hi = _mm256_set1_epi8(static_cast<char>(1 << (2 * j + 1)));
      lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bit_lo), bit_lo), sixteen));
      hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bit_hi), bit_hi), sixteen));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 64 * j), lo);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 64 * j + 32), hi);
  }
  uint8_t sm[16];
  q45_scales_mins(block.scales, sm);
  const float scale = _cvtsh_ss(block.d), min = _cvtsh_ss(block.dmin);
  for (int s = 0; s < 8; ++s) {
    d[2 * s] = scale * static_cast<float>(sm[s]);
    d[2 * s + 1] = -min * static_cast<float>(sm[8 + s]);
  }
}

// One Q6_K super-block's 256 levels in k order (q6k_levels.h) and d·sc of its 16 sub-blocks, which
// is (d·sc₀, d·sc₁) per block already.
void unpack_q6(const BlockQ6_K& block, uint8_t* q, float* d) {
  unpack_q6k_levels<kernel_impl::avx2::Simd>(block, q);
  const float scale = _cvtsh_ss(block.d);
  for (int s = 0; s < 16; ++s) d[s] = scale * static_cast<float>(block.scales[s]);
}

// Rows [row0, row0 + rows) of blocks [b0, b0 + nb) into the chunk's level bytes and scales.
void unpack(const MatmulCall& call, int64_t row0, int64_t rows, int64_t b0, int64_t nb, uint8_t* q_out, float* d_out) {
  const __m128i nibble = _mm_set1_epi8(0x0f);
  constexpr int64_t kBlocksPerSuper = kKQuantBlock / 32;
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* q = q_out + r * kChunk;
    float* d = d_out + r * kScaleStride;
    const std::byte* row = call.weight_row(row0 + r);
    switch (call.w.type) {
      case DType::Q4_0: {
        const BlockQ4_0* blocks = reinterpret_cast<const BlockQ4_0*>(row) + b0;
        for (int64_t b = 0; b < nb; ++b) {
          const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks[b].qs));
          _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * 32), _mm_and_si128(raw, nibble));
          _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * 32 + 16), _mm_and_si128(_mm_srli_epi16(raw, 4), nibble));
          d[2 * b] = _cvtsh_ss(blocks[b].d);
        }
        break;
      }
      case DType::Q8_0: {
        const BlockQ8_0* blocks = reinterpret_cast<const BlockQ8_0*>(row) + b0;
        for (int64_t b = 0; b < nb; ++b) {
          std::memcpy(q + b * 32, blocks[b].qs, 32);
          d[2 * b] = _cvtsh_ss(blocks[b].d);
        }
        break;
      }
      case DType::Q4_K: {
        const BlockQ4_K* blocks = reinterpret_cast<const BlockQ4_K*>(row) + b0 / kBlocksPerSuper;
        for (int64_t i = 0; i < nb / kBlocksPerSuper; ++i) unpack_q45<BlockQ4_K, false>(blocks[i], q + i * 256, d + i * 16);
        break;
      }
      case DType::Q5_K: {
        const BlockQ5_K* blocks = reinterpret_cast<const BlockQ5_K*>(row) + b0 / kBlocksPerSuper;
        for (int64_t i = 0; i < nb / kBlocksPerSuper; ++i) unpack_q45<BlockQ5_K, true>(blocks[i], q + i * 256, d + i * 16);
        break;
      }
      default: {
        const BlockQ6_K* blocks = reinterpret_cast<const BlockQ6_K*>(row) + b0 / kBlocksPerSuper;
        for (int64_t i = 0; i < nb / kBlocksPerSuper; ++i) unpack_q6(blocks[i], q + i * 256, d + i * 16);
        break;
      }
    }
  }
}

// Rows [row_begin, row_end) in blocks of kRowBlock against every panel, with R × V register tiles
// (R rows × V vectors of 8 tokens: a panel's width) and single-row tiles for a block's last rows.
template <DType kType, int R, int V>
void compute_panels(const MatmulCall& call, const Panels& panels, int64_t row_begin, int64_t row_end) {
  constexpr int64_t kWidth = 8 * V;
  const int64_t nb_total = call.w.cols / 32;
  const int64_t padded = panels.n_panels * kWidth;
  std::byte* scratch = thread_scratch<kernel_impl::avx2::Simd>(static_cast<size_t>(kRowBlock * (kChunk + kScaleStride * 4 + padded * 4)));
  uint8_t* q = reinterpret_cast<uint8_t*>(scratch);
  float* d = reinterpret_cast<float*>(scratch + kRowBlock * kChunk);
  float* yt = reinterpret_cast<float*>(scratch + kRowBlock * (kChunk + kScaleStride * 4));  // [row][padded]

  for (int64_t rb = row_begin; rb < row_end; rb += kRowBlock) {
    const int64_t rows = std::min(kRowBlock, row_end - rb);
    std::memset(yt, 0, static_cast<size_t>(rows * padded) * sizeof(float));
    for (int64_t b0 = 0; b0 < nb_total; b0 += kChunk / 32) {
      const int64_t nb = std::min(kChunk / 32, nb_total - b0);
      unpack(call, rb, rows, b0, nb, q, d);
      for (int64_t p = 0; p < panels.n_panels; ++p) {
        const int8_t* xq = panels.qs(p) + b0 * 32 * kWidth;
        const float* dx = panels.d(p) + b0 * kWidth;
        const int32_t* c0 = panels.corr(p, 0) + b0 * kWidth;
        const int32_t* c1 = panels.corr(p, 1) + b0 * kWidth;
        float* y = yt + p * kWidth;
        int64_t r = 0;
        for (; r + R <= rows; r += R) {
          tile<kType, R, V>(q + r * kChunk, d + r * kScaleStride, nb, xq, dx, c0, c1, y + r * padded, padded);
        }
        for (; r < rows; ++r) tile<kType, 1, V>(q + r * kChunk, d + r * kScaleStride, nb, xq, dx, c0, c1, y + r * padded, padded);
      }
    }
    for (int64_t t = 0; t < call.n_tokens; ++t) {
      float* out = call.y + t * call.w.rows + rb;
      for (int64_t r = 0; r < rows; ++r) out[r] = yt[r * padded + t];
    }
  }
}

// 2 rows × 16 tokens keeps 4 int16 sums and 4 int32 dots in registers; a narrow panel's single
// vector leaves room for 4 rows in the same 8 ymm, so each activation load serves 4 maddubs.
template <DType kType>
void compute_format(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  const Panels panels(call.acts, call.n_tokens, call.w.cols);
  if (panels.width == kNarrowPanel) {
    compute_panels<kType, 4, 1>(call, panels, row_begin, row_end);
  } else {
    compute_panels<kType, 2, 2>(call, panels, row_begin, row_end);
  }
}

}  // namespace

size_t quant_gemm_scratch_bytes(int64_t n_tokens, int64_t cols) { return Panels::bytes(n_tokens, cols); }

int64_t quant_gemm_panels(int64_t n_tokens) { return Panels(nullptr, n_tokens, 32).n_panels; }

void prepare_quant_gemm(const MatmulCall& call, int64_t panel_begin, int64_t panel_end) {
  const Panels panels(call.acts, call.n_tokens, call.w.cols);
  const int64_t cols = call.w.cols;
  const int64_t nb = cols / 32;
  const DType type = call.w.type;
  for (int64_t p = panel_begin; p < panel_end; ++p) {
    const int64_t t0 = p * panels.width;
    const int64_t tokens = std::min(panels.width, call.n_tokens - t0);
    if (tokens < panels.width) std::memset(panels.qs(p), 0, static_cast<size_t>(panels.panel_bytes));  // padding tokens
    int8_t* qs = panels.qs(p);
    float* d = panels.d(p);
    int32_t* c0 = panels.corr(p, 0);
    int32_t* c1 = panels.corr(p, 1);
    for (int64_t t = 0; t < tokens; ++t) {
      const float* x = call.x + (t0 + t) * cols;
      for (int64_t b = 0; b < nb; ++b) {
        alignas(32) int8_t q[32];
        float xd;
        int32_t sum;
        quantize_act_row(x + b * 32, 32, q, &xd, &sum);
        const int64_t at = b * panels.width + t;
        d[at] = xd;
        switch (type) {
          case DType::Q4_0: c0[at] = -8 * sum; break;
          case DType::Q4_K:
          case DType::Q5_K: c0[at] = std::bit_cast<int32_t>(xd * static_cast<float>(sum)); break;  // read as a float
          case DType::Q6_K: {
            int32_t first = 0;
            for (int l = 0; l < 16; ++l) first += q[l];
            c0[at] = -32 * first;
            c1[at] = -32 * (sum - first);
            break;
          }
          default: break;
        }
        for (int j = 0; j < 8; ++j) std::memcpy(qs + ((b * 8 + j) * panels.width + t) * 4, q + j * 4, 4);
      }
    }
  }
}

void compute_quant_gemm(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  switch (call.w.type) {
    case DType::Q8_0: compute_format<DType::Q8_0>(call, row_begin, row_end); break;
    case DType::Q4_0: compute_format<DType::Q4_0>(call, row_begin, row_end); break;
    case DType::Q4_K: compute_format<DType::Q4_K>(call, row_begin, row_end); break;
    case DType::Q5_K: compute_format<DType::Q5_K>(call, row_begin, row_end); break;
    default: compute_format<DType::Q6_K>(call, row_begin, row_end); break;
  }
}

}  // namespace morphserve::matmul_detail::avx2
