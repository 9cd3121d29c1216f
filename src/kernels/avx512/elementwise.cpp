// AVX-512 RMSNorm, SwiGLU, softmax and the exp_array test hook: elementwise_simd.h over the zmm traits.
#include "kernels/avx512/simd.h"  // first: it includes <immintrin.h> under a GCC 12 workaround

#include "kernels/elementwise_impl.h"
#include "kernels/elementwise_simd.h"

namespace morphserve::kernel_impl::avx512 {

void rms_norm(const float* x, const float* weight, float* out, int64_t n_rows, int64_t n, float eps) {
  rms_norm_rows<Simd>(x, weight, out, n_rows, n, eps);
}
void silu_mul(const float* gate, const float* up, float* out, int64_t n) { silu_mul_rows<Simd>(gate, up, out, n); }
void softmax(float* x, int64_t n) { softmax_row<Simd>(x, n); }
void exp_array(const float* x, float* out, int64_t n) { exp_rows<Simd>(x, out, n); }

}  // namespace morphserve::kernel_impl::avx512
