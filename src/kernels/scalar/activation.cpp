// Scalar SwiGLU activation and exp (the reference for the vector exp of the SIMD levels).
#include <cmath>

#include "kernels/elementwise_impl.h"

namespace morphserve::kernel_impl::scalar {

void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    // sigmoid from exp(-|g|), which never overflows: 1/(1+e) for g >= 0, e/(1+e) below. The naive
    // 1/(1+exp(-g)) flushes silu(g) to 0 for g < -88 although it is still a normal float there.
    const float e = std::exp(-std::fabs(g));
    out[i] = g * up[i] * (g >= 0.0f ? 1.0f : e) / (1.0f + e);
  }
}

void exp_array(const float* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = std::exp(x[i]);
}

}  // namespace morphserve::kernel_impl::scalar
