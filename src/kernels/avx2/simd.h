#pragma once
// The AVX2 traits the SIMD templates are written against (attention_impl.h, elementwise_simd.h):
// 8-lane ymm vectors, a row tail given as its count of valid lanes. Include only from avx2/
// sources: the member functions are compiled with this folder's flags.
#include <immintrin.h>

#include "kernels/avx2/exp.h"  // also the lane helpers: reduce_add, reduce_max, tail_mask

namespace morphserve::kernel_impl::avx2 {

struct Simd {
  using Vec = __m256;
  static constexpr int kLanes = 8;
  static int tail(int valid) { return valid; }  // lanes of the last vector, 1..8
  static Vec zero() { return _mm256_setzero_ps(); }
  static Vec set1(float x) { return _mm256_set1_ps(x); }
  static Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
  static Vec sub(Vec a, Vec b) { return _mm256_sub_ps(a, b); }
  static Vec mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
  static Vec max(Vec a, Vec b) { return _mm256_max_ps(a, b); }
  static Vec div(Vec a, Vec b) { return _mm256_div_ps(a, b); }
  static Vec fmadd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
  static Vec neg_abs(Vec x) { return _mm256_or_ps(x, _mm256_set1_ps(-0.0f)); }
  // x >= 0 ? if_nonneg : otherwise, per lane (NaN lanes take `otherwise`).
  static Vec select_nonneg(Vec x, Vec if_nonneg, Vec otherwise) {
    return _mm256_blendv_ps(otherwise, if_nonneg, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ));
  }
  static Vec exp(Vec x) { return exp_ps(x); }
  static Vec load(const float* p) { return _mm256_loadu_ps(p); }
  static Vec load_tail(const float* p, int valid) {
    return valid == 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, tail_mask(valid));
  }
  // The first `valid` lanes from p, the rest `fill`.
  static Vec load_tail_or(Vec fill, const float* p, int valid) {
    const __m256i m = tail_mask(valid);
    return _mm256_blendv_ps(fill, _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
  }
  // v with the lanes past `valid` zeroed.
  static Vec keep_tail(Vec v, int valid) { return _mm256_and_ps(v, _mm256_castsi256_ps(tail_mask(valid))); }
  static void store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
  static void storeu(float* p, Vec v) { _mm256_storeu_ps(p, v); }
  static void store_tail(float* p, int valid, Vec v) {
    if (valid == 8) {
      _mm256_storeu_ps(p, v);
    } else {
      _mm256_maskstore_ps(p, tail_mask(valid), v);
    }
  }
  static float reduce_add(Vec v) { return avx2::reduce_add(v); }
  static float reduce_max(Vec v) { return avx2::reduce_max(v); }
  // out[i] = horizontal sum of d_i, the four reductions sharing one hadd transpose.
  static void reduce_add4(Vec d0, Vec d1, Vec d2, Vec d3, float* out) {
    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(d0, d1), _mm256_hadd_ps(d2, d3));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
  }
};

}  // namespace morphserve::kernel_impl::avx2
