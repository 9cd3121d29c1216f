#pragma once
// Private to the AVX-512 matmul files: their activation layouts and entry points.
#include <cstddef>
#include <cstdint>

#include "kernels/avx512/simd.h"
#include "kernels/matmul_gemm_float_driver.h"
#include "kernels/matmul_impl.h"

namespace morphserve::matmul_detail::avx512 {

// Activations for the quantized GEMV ("dot form") kernels, per token, in pairs of groups (see
// matmul_quant.cpp): a group is G blocks (G = 4 for Q4_0, 2 for Q8_0) whose weights fill one zmm.
// Per pair: int8 values of group A then group B, each in the order its weights unpack to (Q4_0:
// the 4 blocks' first 16 values, then their last 16); then per pair one float vector of block
// scales in the folded [A, B, A, B]-per-128-bit-lane layout; then per pair two int32 vectors (A,
// B) with each block's offset correction in its first lane. Padding blocks of the last pair are 0.
struct GroupedActs {
  int64_t group_blocks = 0;
  int64_t pairs = 0;
  int64_t token_bytes = 0;
  std::byte* base = nullptr;

  GroupedActs(std::byte* data, DType type, int64_t /*n_tokens*/, int64_t cols)
      : group_blocks(type == DType::Q4_0 ? 4 : 2),
        pairs((cols / 32 + 2 * group_blocks - 1) / (2 * group_blocks)),
        token_bytes(pairs * (2 * group_blocks * 32 + 64 + 128)),
        base(data) {}
  static size_t bytes(DType type, int64_t n_tokens, int64_t cols) {
    return static_cast<size_t>(GroupedActs(nullptr, type, n_tokens, cols).token_bytes * n_tokens);
  }
  int64_t group_qs() const { return group_blocks * 32; }
  // The block (0 .. 2G-1 within the pair) whose partial sums fill 128-bit lane `lane` of the
  // folded dot vector: words 0 and 2 come from group A, words 1 and 3 from group B.
  int a_block(int lane) const { return group_blocks == 4 ? lane : lane / 2; }
  int b_block(int lane) const { return static_cast<int>(group_blocks) + a_block(lane); }
  int8_t* qs(int64_t t) const { return reinterpret_cast<int8_t*>(base + t * token_bytes); }
  float* dvec(int64_t t) const {
    return reinterpret_cast<float*>(base + t * token_bytes + pairs * 2 * group_qs());
  }
  int32_t* cvec(int64_t t) const {
    return reinterpret_cast<int32_t*>(base + t * token_bytes + pairs * 2 * group_qs() + pairs * 64);
  }
};

// Activations for the K-quant GEMV kernels (matmul_kquant.cpp), per token, per 256-weight super-block
// (kBytes each): the 8 blocks' int8 values in the order the super-block's weights unpack to (Q6_K:
// as they are; Q4_K/Q5_K: blocks 0,2,1,3,4,6,5,7, the nibble halves of its two 64-byte halves); a
// float vector of block scales in the kernels' folded lane order; and a 64-byte vector of
// corrections: Q4_K/Q5_K the floats xd·Σx of blocks 0..7 in lanes 0..7 (lanes 8..15 zero), for
// the min term; Q6_K the int32 −32·Σx of the 16-value sub-blocks, in folded lane order.
struct KQuantActs {
  static constexpr int64_t kBytes = 256 + 64 + 64;
  static size_t bytes(int64_t n_tokens, int64_t cols) {
    return static_cast<size_t>(n_tokens * (cols / kKQuantBlock) * kBytes);
  }
  static std::byte* token(std::byte* base, int64_t t, int64_t cols) {
    return base + t * (cols / kKQuantBlock) * kBytes;
  }
};

// Activations for the float GEMM kernels: tokens in panels of up to kPanelTokens, each panel
// transposed to [k][token] (16·vecs(p) tokens per k, the last panel narrower), so one zmm load
// gives 16 tokens' values at one k. Panel p starts at p * cols * kPanelTokens floats.
using FloatPanels = FloatPanelsOf<kernel_impl::avx512::Simd, 4>;

// Activations for the quantized GEMM kernels: tokens in panels of up to kPanelTokens. Per panel
// (width = 16·vecs(p) tokens): int8 values as [k/4][token][4 bytes] so one zmm load gives 4
// consecutive k for 16 tokens (vpdpbusd's dword layout); then per block b, [b][token] float
// scales; then corr_arrays arrays of [b][token] 32-bit corrections, whose meaning is the weight
// format's: Q4_0/Q8_0 one, the int32 offset correction (−8·Σx or −128·Σx); Q4_K/Q5_K one, the
// float xd·Σx for the min term; Q6_K two, −32·Σx of each 16-value half. Padding tokens are all
// zero. Panel p starts at p * panel_bytes.
struct QuantPanels {
  static constexpr int kMaxVecs = 3;
  static constexpr int64_t kPanelTokens = 16 * kMaxVecs;
  int64_t n_tokens = 0;
  int64_t cols = 0;
  int64_t n_panels = 0;
  int64_t panel_bytes = 0;
  std::byte* base = nullptr;

  QuantPanels(std::byte* data, int64_t n, int64_t k, int corr_arrays)
      : n_tokens(n),
        cols(k),
        n_panels((n + kPanelTokens - 1) / kPanelTokens),
        panel_bytes(k * kPanelTokens + k / 32 * kPanelTokens * 4 * (1 + corr_arrays)),
        base(data) {}
  static size_t bytes(int64_t n, int64_t k, int corr_arrays) {
    const QuantPanels p(nullptr, n, k, corr_arrays);
    return static_cast<size_t>(p.panel_bytes * p.n_panels);
  }
  int vecs(int64_t p) const {
    const int64_t left = n_tokens - p * kPanelTokens;
    return static_cast<int>(left >= kPanelTokens ? kMaxVecs : (left + 15) / 16);
  }
  int64_t width(int64_t p) const { return 16 * vecs(p); }
  int8_t* qs(int64_t p) const { return reinterpret_cast<int8_t*>(base + p * panel_bytes); }
  float* d(int64_t p) const { return reinterpret_cast<float*>(base + p * panel_bytes + cols * width(p)); }
  int32_t* corr(int64_t p, int array) const {
    return reinterpret_cast<int32_t*>(base + p * panel_bytes + cols * width(p) + cols / 32 * width(p) * 4 * (1 + array));
  }
};

// Where the GEMM kernels fetch the next weight chunk (matmul_gemm_float_driver.h).
using NextChunk = NextWeightChunk<kernel_impl::avx512::Simd>;

// One block of 32 activations -> int8, fp32 scale and sum, bit-identical to quantize_act_block_ref.
void quantize_act_block(const float* x, int8_t* q, float* d, int32_t* sum);

void prepare_quant_gemv(const MatmulCall& call, int64_t token_begin, int64_t token_end);
void compute_quant_gemv(const MatmulCall& call, int64_t row_begin, int64_t row_end);
void prepare_float_gemm(const MatmulCall& call, int64_t panel_begin, int64_t panel_end);
void compute_float_gemm(const MatmulCall& call, int64_t row_begin, int64_t row_end);
void prepare_quant_gemm(const MatmulCall& call, int64_t panel_begin, int64_t panel_end);
void compute_quant_gemm(const MatmulCall& call, int64_t row_begin, int64_t row_end);
void compute_float_gemv(const MatmulCall& call, int64_t row_begin, int64_t row_end);
void prepare_kquant_gemv(const MatmulCall& call, int64_t token_begin, int64_t token_end);
void compute_kquant_gemv(const MatmulCall& call, int64_t row_begin, int64_t row_end);
// The K-quant GEMM (matmul_gemm_kquant.cpp); its panels have kquant_corr_arrays(type) arrays.
int kquant_corr_arrays(DType type);
void prepare_kquant_gemm(const MatmulCall& call, int64_t panel_begin, int64_t panel_end);
void compute_kquant_gemm(const MatmulCall& call, int64_t row_begin, int64_t row_end);

}  // namespace morphserve::matmul_detail::avx512
