// Scalar softmax: the reference for the SIMD levels.
#include <cmath>
#include <limits>

#include "kernels/elementwise_impl.h"

namespace morphserve::kernel_impl::scalar {

void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  float max = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) max = std::fmax(max, x[i]);
  // A NaN entry still poisons the whole row: its exp is NaN and so is the sum.
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace morphserve::kernel_impl::scalar
