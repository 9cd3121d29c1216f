// AVX-512 SwiGLU activation and the exp_array test hook.
#include "kernels/avx512/exp.h"  // first: it includes <immintrin.h> under a GCC 12 workaround

#include "kernels/elementwise_impl.h"

namespace morphserve::kernel_impl::avx512 {
namespace {

inline __mmask16 tail_mask(int64_t left) {
  return left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
}

}  // namespace

void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
    const __m512 u = _mm512_maskz_loadu_ps(m, up + i);
    // sigmoid from e = exp(-|g|), which never overflows (see scalar/activation.cpp).
    const __m512 e = exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_abs_ps(g)));
    const __m512 num = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(g, _mm512_setzero_ps(), _CMP_GE_OQ), e, one);
    _mm512_mask_storeu_ps(out + i, m, _mm512_div_ps(_mm512_mul_ps(_mm512_mul_ps(g, u), num), _mm512_add_ps(one, e)));
  }
}

void exp_array(const float* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(out + i, m, exp_ps(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

}  // namespace morphserve::kernel_impl::avx512
