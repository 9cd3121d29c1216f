#pragma once
// Private to the AVX-512 K-quant kernels (matmul_kquant.cpp, matmul_gemm_kquant.cpp): the packed
// 6-bit sub-block scales and mins of Q4_K/Q5_K, unpacked in one go.
#include <immintrin.h>

#include <cstdint>

namespace morphserve::matmul_detail::avx512 {

// The 12 packed bytes of 6-bit scales and mins as floats [sc0..sc7, m0..m7] (llama.cpp's
// get_scale_min_k4 for all eight sub-blocks at once, on the three 32-bit words u0, u1, u2). Done in
// SSE registers: the scalar form stored four words and reloaded them as one vector, a failed store
// forward on every row of every super-block. Reads 16 bytes: the 4 after the scales are the block's
// own quants, masked away.
inline __m512 q45_scales_mins(const uint8_t* packed) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed));  // u0 u1 u2 (q)
  const __m128i low6 = _mm_set1_epi32(0x3f3f3f3f), low4 = _mm_set1_epi32(0x0f0f0f0f), low2 = _mm_set1_epi32(0x03030303);
  const __m128i first = _mm_and_si128(v, low6);  // sc0..3, m0..3
  // sc4..7 = (u2 & low4) | ((u0 >> 6) & low2) << 4;  m4..7 = ((u2 >> 4) & low4) | ((u1 >> 6) & low2) << 4.
  const __m128i u2 = _mm_srlv_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(2, 2, 2, 2)), _mm_setr_epi32(0, 4, 0, 0));
  const __m128i second = _mm_or_si128(_mm_and_si128(u2, low4), _mm_slli_epi32(_mm_and_si128(_mm_srli_epi32(v, 6), low2), 4));
  const __m128i bytes = _mm_unpacklo_epi32(first, second);  // sc0..3, sc4..7, m0..3, m4..7
  return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes));
}

}  // namespace morphserve::matmul_detail::avx512
