// The reference matmul for F32 / F16 / BF16 weights: plain loops, fp32 accumulation. The SIMD
// levels are tested against this, and it is tested against double-precision dots.
#include "core/half.h"
#include "kernels/matmul_impl.h"

namespace morphserve::matmul_detail::scalar {
namespace {

template <typename Element, typename ToFloat>
void dot_rows(const MatmulCall& call, int64_t row_begin, int64_t row_end, ToFloat to_float) {
  const int64_t cols = call.w.cols;
  for (int64_t r = row_begin; r < row_end; ++r) {
    const Element* w = reinterpret_cast<const Element*>(call.weight_row(r));
    for (int64_t t = 0; t < call.n_tokens; ++t) {
      const float* x = call.x + t * cols;
      float acc = 0.0f;
      for (int64_t c = 0; c < cols; ++c) acc += to_float(w[c]) * x[c];
      call.y[t * call.w.rows + r] = acc;
    }
  }
}

}  // namespace

void compute_float(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  switch (call.w.type) {
    case DType::F32:
      dot_rows<float>(call, row_begin, row_end, [](float v) { return v; });
      break;
    case DType::F16:
      dot_rows<uint16_t>(call, row_begin, row_end, [](uint16_t v) { return fp16_to_fp32(v); });
      break;
    case DType::BF16:
      dot_rows<uint16_t>(call, row_begin, row_end, [](uint16_t v) { return bf16_to_fp32(v); });
      break;
    default:
      break;  // quantized types go to compute_q8_0 / compute_q4_0
  }
}

}  // namespace morphserve::matmul_detail::scalar
