#pragma once
// Private to the AVX2 K-quant kernels (matmul_kquant.cpp, matmul_gemm_quant.cpp): the packed 6-bit
// sub-block scales and mins of Q4_K/Q5_K, unpacked in one go.
#include <cstdint>
#include <cstring>

namespace morphserve::matmul_detail::avx2 {

// [sc0..sc7, m0..m7] from the 12 packed bytes (llama.cpp's get_scale_min_k4 on 32-bit words).
inline void q45_scales_mins(const uint8_t* packed, uint8_t (&out)[16]) {
  uint32_t u[4];
  std::memcpy(u, packed, 12);
  constexpr uint32_t low6 = 0x3f3f3f3f, low4 = 0x0f0f0f0f, low2 = 0x03030303;
  u[3] = ((u[2] >> 4) & low4) | (((u[1] >> 6) & low2) << 4);
  const uint32_t mins_lo = u[1] & low6;
  u[1] = (u[2] & low4) | (((u[0] >> 6) & low2) << 4);
  u[2] = mins_lo;
  u[0] &= low6;
  std::memcpy(out, u, 16);
}

}  // namespace morphserve::matmul_detail::avx2
