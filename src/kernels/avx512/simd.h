#pragma once
// The AVX-512 traits the SIMD templates are written against (attention_impl.h, elementwise_simd.h):
// 16-lane zmm vectors, a row tail given as a lane mask. Include only from avx512/ sources: the
// member functions are compiled with this folder's flags.
#include "kernels/avx512/exp.h"  // first: it includes <immintrin.h> under a GCC 12 workaround

namespace morphserve::kernel_impl::avx512 {

struct Simd {
  using Vec = __m512;
  static constexpr int kLanes = 16;
  static __mmask16 tail(int valid) { return valid >= 16 ? __mmask16(0xffff) : __mmask16((1u << valid) - 1); }
  static Vec zero() { return _mm512_setzero_ps(); }
  static Vec set1(float x) { return _mm512_set1_ps(x); }
  static Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
  static Vec sub(Vec a, Vec b) { return _mm512_sub_ps(a, b); }
  static Vec mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
  static Vec max(Vec a, Vec b) { return _mm512_max_ps(a, b); }
  static Vec div(Vec a, Vec b) { return _mm512_div_ps(a, b); }
  static Vec fmadd(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
  static Vec neg_abs(Vec x) { return _mm512_sub_ps(_mm512_setzero_ps(), _mm512_abs_ps(x)); }
  // x >= 0 ? if_nonneg : otherwise, per lane (NaN lanes take `otherwise`).
  static Vec select_nonneg(Vec x, Vec if_nonneg, Vec otherwise) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ), otherwise, if_nonneg);
  }
  static Vec exp(Vec x) { return exp_ps(x); }
  static Vec load(const float* p) { return _mm512_loadu_ps(p); }
  static Vec load_tail(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
  // The lanes of m from p, the rest `fill`.
  static Vec load_tail_or(Vec fill, const float* p, __mmask16 m) { return _mm512_mask_loadu_ps(fill, m, p); }
  // v with the lanes outside m zeroed.
  static Vec keep_tail(Vec v, __mmask16 m) { return _mm512_maskz_mov_ps(m, v); }
  static void store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
  static void storeu(float* p, Vec v) { _mm512_storeu_ps(p, v); }
  static void store_tail(float* p, __mmask16 m, Vec v) { _mm512_mask_storeu_ps(p, m, v); }
  static float reduce_add(Vec v) { return _mm512_reduce_add_ps(v); }
  static float reduce_max(Vec v) { return _mm512_reduce_max_ps(v); }
  // out[i] = horizontal sum of d_i: fold each to 256 bits, then hadd-transpose the four.
  static void reduce_add4(Vec d0, Vec d1, Vec d2, Vec d3, float* out) {
    const __m256 a0 = _mm256_add_ps(_mm512_castps512_ps256(d0), _mm512_extractf32x8_ps(d0, 1));
    const __m256 a1 = _mm256_add_ps(_mm512_castps512_ps256(d1), _mm512_extractf32x8_ps(d1, 1));
    const __m256 a2 = _mm256_add_ps(_mm512_castps512_ps256(d2), _mm512_extractf32x8_ps(d2, 1));
    const __m256 a3 = _mm256_add_ps(_mm512_castps512_ps256(d3), _mm512_extractf32x8_ps(d3, 1));
    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
  }
};

}  // namespace morphserve::kernel_impl::avx512
