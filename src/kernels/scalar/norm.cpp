// Scalar RMSNorm: the reference the SIMD levels are tested against, and the fallback for CPUs
// without AVX2.
#include <cmath>

#include "kernels/elementwise_impl.h"

namespace morphserve::kernel_impl::scalar {

void rms_norm(const float* x, const float* weight, float* out, int64_t n_rows, int64_t n, float eps) {
  for (int64_t row = 0; row < n_rows; ++row) {
    const float* xr = x + row * n;
    float* outr = out + row * n;
    // Double accumulation makes this path the accurate reference (as ggml does for this sum).
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(xr[i]) * xr[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(n) + eps));
    for (int64_t i = 0; i < n; ++i) outr[i] = xr[i] * inv * weight[i];
  }
}

}  // namespace morphserve::kernel_impl::scalar
