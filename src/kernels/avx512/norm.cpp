// AVX-512 RMSNorm. Four independent accumulators hide the FMA latency and, like a pairwise sum,
// keep the float rounding error of the sum of squares far below what the norm can notice.
#include "kernels/avx512/exp.h"  // first: it includes <immintrin.h> under a GCC 12 workaround

#include <cmath>

#include "kernels/elementwise_impl.h"

namespace morphserve::kernel_impl::avx512 {

void rms_norm(const float* x, const float* weight, float* out, int64_t n_rows, int64_t n, float eps) {
  for (int64_t row = 0; row < n_rows; ++row) {
    const float* xr = x + row * n;
    float* outr = out + row * n;
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
      const __m512 a = _mm512_loadu_ps(xr + i), b = _mm512_loadu_ps(xr + i + 16);
      const __m512 c = _mm512_loadu_ps(xr + i + 32), d = _mm512_loadu_ps(xr + i + 48);
      s0 = _mm512_fmadd_ps(a, a, s0);
      s1 = _mm512_fmadd_ps(b, b, s1);
      s2 = _mm512_fmadd_ps(c, c, s2);
      s3 = _mm512_fmadd_ps(d, d, s3);
    }
    for (; i < n; i += 16) {
      const __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - i)) - 1);
      const __m512 a = _mm512_maskz_loadu_ps(m, xr + i);
      s0 = _mm512_fmadd_ps(a, a, s0);
    }
    const float sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    const float inv = static_cast<float>(1.0 / std::sqrt(static_cast<double>(sum) / static_cast<double>(n) + eps));
    const __m512 vinv = _mm512_set1_ps(inv);
    for (i = 0; i < n; i += 16) {
      const __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - i)) - 1);
      const __m512 a = _mm512_maskz_loadu_ps(m, xr + i);
      const __m512 w = _mm512_maskz_loadu_ps(m, weight + i);
      _mm512_mask_storeu_ps(outr + i, m, _mm512_mul_ps(_mm512_mul_ps(a, vinv), w));
    }
  }
}

}  // namespace morphserve::kernel_impl::avx512
