// AVX2 SwiGLU activation and the exp_array test hook.
#include <immintrin.h>

#include "kernels/avx2/exp.h"
#include "kernels/elementwise_impl.h"

namespace morphserve::kernel_impl::avx2 {
namespace {

inline __m256 silu_mul8(__m256 g, __m256 u) {
  // sigmoid from e = exp(-|g|), which never overflows (see scalar/activation.cpp).
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 neg_abs = _mm256_or_ps(g, _mm256_set1_ps(-0.0f));
  const __m256 e = exp_ps(neg_abs);
  const __m256 num = _mm256_blendv_ps(e, one, _mm256_cmp_ps(g, _mm256_setzero_ps(), _CMP_GE_OQ));
  return _mm256_div_ps(_mm256_mul_ps(_mm256_mul_ps(g, u), num), _mm256_add_ps(one, e));
}

}  // namespace

void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(out + i, silu_mul8(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
  }
  if (i < n) {
    const __m256i m = tail_mask(static_cast<int>(n - i));
    _mm256_maskstore_ps(out + i, m, silu_mul8(_mm256_maskload_ps(gate + i, m), _mm256_maskload_ps(up + i, m)));
  }
}

void exp_array(const float* x, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, exp_ps(_mm256_loadu_ps(x + i)));
  if (i < n) {
    const __m256i m = tail_mask(static_cast<int>(n - i));
    _mm256_maskstore_ps(out + i, m, exp_ps(_mm256_maskload_ps(x + i, m)));
  }
}

}  // namespace morphserve::kernel_impl::avx2
