// The AVX-512 level's matmul table: GEMV ("dot form") kernels for decode and small batches, GEMM
// kernels with transposed activation panels once enough tokens share the weights.
#include "kernels/avx512/matmul_avx512.h"

namespace morphserve::matmul_detail::avx512 {
namespace {

enum Variant { kFloatGemv, kFloatGemm, kQuantGemv, kQuantGemm, kKQuantGemv, kKQuantGemm };

// From these token counts the GEMM kernels beat the GEMV ones (1024×2048, one thread, CPU time):
// the quantized GEMM from ~10 tokens (Q8_0 already at 8, Q4_0 at 12), the float GEMM from ~24
// (below that its one- and two-vector panels are bound by broadcast loads).
constexpr int64_t kFloatGemmMinTokens = 24;
constexpr int64_t kQuantGemmMinTokens = 10;
constexpr int64_t kKQuantGemmMinTokens = 16;

size_t plan(MatmulCall& call) {
  if (dtype_is_kquant(call.w.type) && call.n_tokens >= kKQuantGemmMinTokens) {
    call.variant = kKQuantGemm;
    call.row_grain = 4;
    return QuantPanels::bytes(call.n_tokens, call.w.cols, kquant_corr_arrays(call.w.type));
  }
  if (dtype_is_kquant(call.w.type)) {
    call.variant = kKQuantGemv;
    call.row_grain = 2;
    return KQuantActs::bytes(call.n_tokens, call.w.cols);
  }
  if (dtype_is_quantized(call.w.type) && call.n_tokens >= kQuantGemmMinTokens) {
    call.variant = kQuantGemm;
    call.row_grain = 4;
    return QuantPanels::bytes(call.n_tokens, call.w.cols, 1);
  }
  if (dtype_is_quantized(call.w.type)) {
    call.variant = kQuantGemv;
    call.row_grain = 2;
    return GroupedActs::bytes(call.w.type, call.n_tokens, call.w.cols);
  }
  if (call.n_tokens >= kFloatGemmMinTokens) {
    call.variant = kFloatGemm;
    call.row_grain = 6;
    return FloatPanels::bytes(call.n_tokens, call.w.cols);
  }
  call.variant = kFloatGemv;
  call.row_grain = 4;
  return 0;
}

int64_t prepare_items(const MatmulCall& call) {
  switch (call.variant) {
    case kQuantGemv:
    case kKQuantGemv: return call.n_tokens;
    case kFloatGemm: return FloatPanels(nullptr, call.n_tokens, call.w.cols).n_panels;
    case kQuantGemm:
    case kKQuantGemm: return QuantPanels(nullptr, call.n_tokens, call.w.cols, 1).n_panels;
    default: return 0;
  }
}

void prepare(const MatmulCall& call, int64_t begin, int64_t end) {
  switch (call.variant) {
    case kQuantGemv: prepare_quant_gemv(call, begin, end); break;
    case kKQuantGemv: prepare_kquant_gemv(call, begin, end); break;
    case kFloatGemm: prepare_float_gemm(call, begin, end); break;
    case kQuantGemm: prepare_quant_gemm(call, begin, end); break;
    case kKQuantGemm: prepare_kquant_gemm(call, begin, end); break;
    default: break;
  }
}

void compute(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  switch (call.variant) {
    case kQuantGemv: compute_quant_gemv(call, row_begin, row_end); break;
    case kKQuantGemv: compute_kquant_gemv(call, row_begin, row_end); break;
    case kFloatGemm: compute_float_gemm(call, row_begin, row_end); break;
    case kQuantGemm: compute_quant_gemm(call, row_begin, row_end); break;
    case kKQuantGemm: compute_kquant_gemm(call, row_begin, row_end); break;
    default: compute_float_gemv(call, row_begin, row_end); break;
  }
}

}  // namespace

const IsaMatmul& matmul_table() {
  static const IsaMatmul table{plan, prepare_items, prepare, compute};
  return table;
}

}  // namespace morphserve::matmul_detail::avx512
