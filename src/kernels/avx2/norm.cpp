// AVX2 RMSNorm. Four independent accumulators hide the FMA latency and, like a pairwise sum,
// keep the float rounding error of the sum of squares far below what the norm can notice.
#include <immintrin.h>

#include <cmath>

#include "kernels/avx2/exp.h"  // also the lane helpers: reduce_add, tail_mask
#include "kernels/elementwise_impl.h"

namespace morphserve::kernel_impl::avx2 {

void rms_norm(const float* x, const float* weight, float* out, int64_t n_rows, int64_t n, float eps) {
  for (int64_t row = 0; row < n_rows; ++row) {
    const float* xr = x + row * n;
    float* outr = out + row * n;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
      const __m256 a = _mm256_loadu_ps(xr + i), b = _mm256_loadu_ps(xr + i + 8);
      const __m256 c = _mm256_loadu_ps(xr + i + 16), d = _mm256_loadu_ps(xr + i + 24);
      s0 = _mm256_fmadd_ps(a, a, s0);
      s1 = _mm256_fmadd_ps(b, b, s1);
      s2 = _mm256_fmadd_ps(c, c, s2);
      s3 = _mm256_fmadd_ps(d, d, s3);
    }
    for (; i < n; i += 8) {
      const __m256 a = _mm256_maskload_ps(xr + i, tail_mask(static_cast<int>(n - i < 8 ? n - i : 8)));
      s0 = _mm256_fmadd_ps(a, a, s0);
    }
    const float sum = reduce_add(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    const float inv = static_cast<float>(1.0 / std::sqrt(static_cast<double>(sum) / static_cast<double>(n) + eps));
    const __m256 vinv = _mm256_set1_ps(inv);
    for (i = 0; i + 8 <= n; i += 8) {
      const __m256 a = _mm256_loadu_ps(xr + i);
      _mm256_storeu_ps(outr + i, _mm256_mul_ps(_mm256_mul_ps(a, vinv), _mm256_loadu_ps(weight + i)));
    }
    if (i < n) {
      const __m256i m = tail_mask(static_cast<int>(n - i));
      const __m256 a = _mm256_maskload_ps(xr + i, m);
      _mm256_maskstore_ps(outr + i, m, _mm256_mul_ps(_mm256_mul_ps(a, vinv), _mm256_maskload_ps(weight + i, m)));
    }
  }
}

}  // namespace morphserve::kernel_impl::avx2
