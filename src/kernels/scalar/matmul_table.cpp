// The scalar level's matmul table and row converters: activations are quantized per token into
// the plain QuantizedActs layout, then each thread computes its rows.
#include "core/half.h"
#include "kernels/matmul_impl.h"

namespace morphserve::matmul_detail::scalar {
namespace {

size_t plan(MatmulCall& call) {
  call.row_grain = 1;
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

void f16_to_f32(const uint16_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(src[i]);
}
void bf16_to_f32(const uint16_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(src[i]);
}
void f32_to_f16(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = fp32_to_fp16(src[i]);
}
void f32_to_bf16(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = fp32_to_bf16(src[i]);
}

}  // namespace

const IsaMatmul& matmul_table() {
  static const IsaMatmul table{plan, prepare_items, prepare, compute};
  return table;
}

const RowConverters& row_converters() {
  static const RowConverters converters{f16_to_f32, bf16_to_f32, f32_to_f16, f32_to_bf16};
  return converters;
}

}  // namespace morphserve::matmul_detail::scalar
