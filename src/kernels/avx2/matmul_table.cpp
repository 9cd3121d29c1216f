// The AVX2 level's matmul table: dot-form kernels over the plain QuantizedActs layout for decode
// and small batches, and GEMMs over transposed activation panels once enough tokens share the
// weights (matmul_gemm_quant.cpp for quantized weights, matmul_gemm_float.cpp for float ones).
#include "kernels/matmul_impl.h"

namespace morphserve::matmul_detail::avx2 {
namespace {

enum Variant { kDotForm, kQuantGemm, kFloatGemm };

// From these token counts the quantized GEMM beats the dot form (bench_matmul 5632×2048, 2 threads,
// at 8 tokens, half of its 16-token panel padding: Q4_0 3.25 → 2.18 ms, Q6_K 4.69 → 2.56, Q4_K
// even at 3.5; Q8_0 2.23 → 2.99, its sign trick widens every step, so it waits for a full panel).
constexpr int64_t kQuantGemmMinTokens = 8;
constexpr int64_t kQ8GemmMinTokens = 16;
// The float GEMM from a full 16-token panel (5632×2048 F16, 2 threads, min of 3000 calls: at 12
// tokens the dot form 2.37 ms against 3.17, at 16 tokens 3.17 against 2.77).
constexpr int64_t kFloatGemmMinTokens = 16;

bool use_gemm(const MatmulCall& call) {
  if (!dtype_is_quantized(call.w.type)) return false;
  return call.n_tokens >= (call.w.type == DType::Q8_0 ? kQ8GemmMinTokens : kQuantGemmMinTokens);
}

size_t plan(MatmulCall& call) {
  if (!dtype_is_quantized(call.w.type) && call.n_tokens >= kFloatGemmMinTokens) {
    call.variant = kFloatGemm;
    call.row_grain = 6;  // the GEMM kernel's row tile
    return float_gemm_scratch_bytes(call.n_tokens, call.w.cols);
  }
  call.row_grain = 2;  // the R of the dot form's and the wide-panel GEMM's row tiles
  if (use_gemm(call)) {
    call.variant = kQuantGemm;
    call.row_grain = 4;  // a multiple of both GEMM row tiles (4 rows in narrow panels)
    return quant_gemm_scratch_bytes(call.n_tokens, call.w.cols);
  }
  call.variant = kDotForm;
  return dtype_is_quantized(call.w.type) ? QuantizedActs::bytes(call.n_tokens, call.w.cols) : 0;
}

int64_t prepare_items(const MatmulCall& call) {
  switch (call.variant) {
    case kQuantGemm: return quant_gemm_panels(call.n_tokens);
    case kFloatGemm: return float_gemm_panels(call.n_tokens, call.w.cols);
    default: return dtype_is_quantized(call.w.type) ? call.n_tokens : 0;
  }
}

// The dot form's activations: each token's row quantized to the Q8 blocks its kernels read.
void prepare_dot_form(const MatmulCall& call, int64_t begin, int64_t end) {
  const QuantizedActs acts = QuantizedActs::at(call.acts, call.n_tokens, call.w.cols);
  for (int64_t t = begin; t < end; ++t) {
    quantize_act_row(call.x + t * call.w.cols, call.w.cols, acts.qs + t * acts.stride, acts.d + t * acts.nb,
                     acts.sum + t * acts.nb);
  }
}

void prepare(const MatmulCall& call, int64_t begin, int64_t end) {
  switch (call.variant) {
    case kQuantGemm: prepare_quant_gemm(call, begin, end); break;
    case kFloatGemm: prepare_float_gemm(call, begin, end); break;
    default: prepare_dot_form(call, begin, end); break;
  }
}

void compute_dot_form(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  switch (call.w.type) {
    case DType::Q8_0: compute_q8_0(call, row_begin, row_end); break;
    case DType::Q4_0: compute_q4_0(call, row_begin, row_end); break;
    case DType::Q4_K: compute_q4_K(call, row_begin, row_end); break;
    case DType::Q5_K: compute_q5_K(call, row_begin, row_end); break;
    case DType::Q6_K: compute_q6_K(call, row_begin, row_end); break;
    default: compute_float(call, row_begin, row_end); break;
  }
}

void compute(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  switch (call.variant) {
    case kQuantGemm: compute_quant_gemm(call, row_begin, row_end); break;
    case kFloatGemm: compute_float_gemm(call, row_begin, row_end); break;
    default: compute_dot_form(call, row_begin, row_end); break;
  }
}

}  // namespace

const IsaMatmul& matmul_table() {
  static const IsaMatmul table{plan, prepare_items, prepare, compute};
  return table;
}

}  // namespace morphserve::matmul_detail::avx2
