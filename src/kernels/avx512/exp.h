#pragma once
// Vector exp for AVX-512 (include only from avx512/ sources). exp(x) = 2^n * exp(r) with
// n = round(x / ln2) and |r| <= ln2/2; exp(r) is its degree-7 Taylor polynomial, whose truncation
// error (r^8/8! < 5.2e-9) is a twentieth of an ulp, so the result is within ~1 ulp (the tests
// check <= 2 ulp against double over the whole float range). scalef applies 2^n with one rounding,
// including into the subnormal range. exp(-inf) = 0, exp(+inf) = inf, NaN stays NaN.
// GCC 12 reports the _mm512_undefined_ps() inside unmasked AVX-512 intrinsics (max, min, reduce,
// scalef...) as maybe-uninitialized once they are inlined (GCC bug 105593); the warning points into
// the header, so silencing it around the include covers every use.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

namespace morphserve::kernel_impl::avx512 {

inline __m512 exp_ps(__m512 x) {
  // Below -104 the result rounds to 0 and above 89 it overflows to inf; clamping keeps r finite
  // for infinite inputs. MAXPS/MINPS return their second operand when one is NaN, so NaN passes.
  x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x);
  x = _mm512_min_ps(_mm512_set1_ps(89.0f), x);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // ln2 split in two so that n * ln2 is subtracted with ~48 bits: the FMA makes the first step exact
  // enough for every n in [-150, 128].
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693147182464599609375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-1.904654299957768e-09f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

}  // namespace morphserve::kernel_impl::avx512
