// The AVX2 level's matmul table: activations are quantized per token into
// the plain QuantizedActs layout, then each thread computes its rows.
#include "kernels/matmul_impl.h"

namespace morphserve::matmul_detail::avx2 {
namespace {

size_t plan(MatmulCall& call) {
  call.row_grain = 2;  // the R of the row tiles
  return dtype_is_quantized(call.w.type) ? QuantizedActs::bytes(call.n_tokens, call.w.cols) : 0;
}

int64_t prepare_items(const MatmulCall& call) { return dtype_is_quantized(call.w.type) ? call.n_tokens : 0; }

void prepare(const MatmulCall& call, int64_t begin, int64_t end) {
  const QuantizedActs acts = QuantizedActs::at(call.acts, call.n_tokens, call.w.cols);
  for (int64_t t = begin; t < end; ++t) {
    quantize_act_row(call.x + t * call.w.cols, call.w.cols, acts.qs + t * acts.stride, acts.d + t * acts.nb,
                     acts.sum + t * acts.nb);
  }
}

void compute(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  switch (call.w.type) {
    case DType::Q8_0: compute_q8_0(call, row_begin, row_end); break;
    case DType::Q4_0: compute_q4_0(call, row_begin, row_end); break;
    case DType::Q4_K: compute_q4_K(call, row_begin, row_end); break;
    case DType::Q5_K: compute_q5_K(call, row_begin, row_end); break;
    case DType::Q6_K: compute_q6_K(call, row_begin, row_end); break;
    default: compute_float(call, row_begin, row_end); break;
  }
}

}  // namespace

const IsaMatmul& matmul_table() {
  static const IsaMatmul table{plan, prepare_items, prepare, compute};
  return table;
}

}  // namespace morphserve::matmul_detail::avx2
