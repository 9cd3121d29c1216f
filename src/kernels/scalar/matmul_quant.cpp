// The reference matmul for Q8_0 / Q4_0 weights. It does the same integer arithmetic as the SIMD
// levels (int8 activations, exact int32 block dots, one float scale per block), so the levels
// agree up to float summation order; tests compare it with double dots over dequantized weights.
#include "core/half.h"
#include "kernels/matmul_impl.h"

namespace morphserve::matmul_detail::scalar {

void quantize_act_row(const float* x, int64_t cols, int8_t* qs, float* d, int32_t* sum) {
  for (int64_t b = 0; b < cols / 32; ++b) quantize_act_block_ref(x + b * 32, qs + b * 32, d + b, sum + b);
}

void compute_q8_0(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  const QuantizedActs acts = QuantizedActs::at(call.acts, call.n_tokens, call.w.cols);
  for (int64_t r = row_begin; r < row_end; ++r) {
    const BlockQ8_0* w = reinterpret_cast<const BlockQ8_0*>(call.weight_row(r));
    for (int64_t t = 0; t < call.n_tokens; ++t) {
      const int8_t* xq = acts.qs + t * acts.stride;
      float acc = 0.0f;
      for (int64_t b = 0; b < acts.nb; ++b) {
        int32_t dot = 0;
        for (int j = 0; j < 32; ++j) dot += w[b].qs[j] * xq[b * 32 + j];
        acc += fp16_to_fp32(w[b].d) * acts.d[t * acts.nb + b] * static_cast<float>(dot);
      }
      call.y[t * call.w.rows + r] = acc;
    }
  }
}

void compute_q4_0(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  const QuantizedActs acts = QuantizedActs::at(call.acts, call.n_tokens, call.w.cols);
  for (int64_t r = row_begin; r < row_end; ++r) {
    const BlockQ4_0* w = reinterpret_cast<const BlockQ4_0*>(call.weight_row(r));
    for (int64_t t = 0; t < call.n_tokens; ++t) {
      const int8_t* xq = acts.qs + t * acts.stride;
      float acc = 0.0f;
      for (int64_t b = 0; b < acts.nb; ++b) {
        // Σ (q-8)·x computed as Σ q·x − 8·Σx, the form the SIMD kernels use (q stays unsigned).
        int32_t dot = 0;
        for (int j = 0; j < 16; ++j) {
          dot += (w[b].qs[j] & 0x0f) * xq[b * 32 + j] + (w[b].qs[j] >> 4) * xq[b * 32 + j + 16];
        }
        dot -= 8 * acts.sum[t * acts.nb + b];
        acc += fp16_to_fp32(w[b].d) * acts.d[t * acts.nb + b] * static_cast<float>(dot);
      }
      call.y[t * call.w.rows + r] = acc;
    }
  }
}

}  // namespace morphserve::matmul_detail::scalar
