#pragma once
// Private to the AVX-512 K-quant kernels (matmul_kquant.cpp, matmul_gemm_kquant.cpp): the packed
// 6-bit sub-block scales and mins of Q4_K/Q5_K, unpacked in one go.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace morphserve::matmul_detail::avx512 {

// The 12 packed bytes of 6-bit scales and mins as floats [sc0..sc7, m0..m7] (llama.cpp's
// get_scale_min_k4 for all eight sub-blocks at once, on 32-bit words).
inline __m512 q45_scales_mins(const uint8_t* packed) {
  uint32_t u[4];
  std::memcpy(u, packed, 12);
  constexpr uint32_t low6 = 0x3f3f3f3f, low4 = 0x0f0f0f0f, low2 = 0x03030303;
  u[3] = ((u[2] >> 4) & low4) | (((u[1] >> 6) & low2) << 4);  // m4..m7
  const uint32_t mins_lo = u[1] & low6;                       // m0..m3
  u[1] = (u[2] & low4) | (((u[0] >> 6) & low2) << 4);          // sc4..sc7
  u[2] = mins_lo;
  u[0] &= low6;                                                // sc0..sc3
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(u));
  return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes));
}

}  // namespace morphserve::matmul_detail::avx512
