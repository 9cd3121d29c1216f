// AVX2 softmax: max, then exp and sum, then scale. The tail of a row is handled with masked loads
// and stores; its lanes are -inf for the max and are kept out of the sum.
#include <immintrin.h>

#include <limits>

#include "kernels/avx2/exp.h"
#include "kernels/elementwise_impl.h"

namespace morphserve::kernel_impl::avx2 {

void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  const __m256 neg_inf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  const int64_t whole = n / 8 * 8;
  const int left = static_cast<int>(n - whole);
  const __m256i tail = tail_mask(left);
  __m256 vmax = neg_inf;
  for (int64_t i = 0; i < whole; i += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + i));
  if (left) vmax = _mm256_max_ps(vmax, _mm256_blendv_ps(neg_inf, _mm256_maskload_ps(x + whole, tail), _mm256_castsi256_ps(tail)));
  const __m256 max = _mm256_set1_ps(reduce_max(vmax));
  // A NaN entry is lost by MAXPS but still poisons the row below: its exp, and so the sum, is NaN.
  __m256 sum = _mm256_setzero_ps();
  for (int64_t i = 0; i < whole; i += 8) {
    const __m256 e = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), max));
    _mm256_storeu_ps(x + i, e);
    sum = _mm256_add_ps(sum, e);
  }
  if (left) {
    const __m256 e = exp_ps(_mm256_sub_ps(_mm256_maskload_ps(x + whole, tail), max));
    _mm256_maskstore_ps(x + whole, tail, e);
    sum = _mm256_add_ps(sum, _mm256_and_ps(e, _mm256_castsi256_ps(tail)));
  }
  const __m256 inv = _mm256_set1_ps(1.0f / reduce_add(sum));
  for (int64_t i = 0; i < whole; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
  if (left) _mm256_maskstore_ps(x + whole, tail, _mm256_mul_ps(_mm256_maskload_ps(x + whole, tail), inv));
}

}  // namespace morphserve::kernel_impl::avx2
