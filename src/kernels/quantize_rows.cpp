#include "kernels/quantize_rows.h"

#include <algorithm>
#include <cmath>

#include "core/half.h"

namespace morphserve {

void quantize_row_q8_0_ref(const float* x, BlockQ8_0* y, int64_t n) {
  const int64_t nb = n / kQuantBlock;
  for (int64_t i = 0; i < nb; ++i, x += kQuantBlock) {
    float amax = 0.0f;
    for (int j = 0; j < kQuantBlock; ++j) {
      const float v = std::fabs(x[j]);
      amax = amax > v ? amax : v;  // llama.cpp's MAX macro: a NaN never replaces amax
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < kQuantBlock; ++j) y[i].qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
  }
}

void quantize_row_q4_0_ref(const float* x, BlockQ4_0* y, int64_t n) {
  const int64_t nb = n / kQuantBlock;
  for (int64_t i = 0; i < nb; ++i, x += kQuantBlock) {
    float amax = 0.0f;
    float max = 0.0f;
    for (int j = 0; j < kQuantBlock; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < kQuantBlock / 2; ++j) {
      // x*id lies in [-8, 8], so +8.5 lies in [0.5, 16.5]: truncation is floor, and only the
      // extreme +8 can reach 16, hence the clamp to 15 (llama.cpp's exact expression).
      const int q0 = std::min(15, static_cast<int>(x[j] * id + 8.5f));
      const int q1 = std::min(15, static_cast<int>(x[j + kQuantBlock / 2] * id + 8.5f));
      y[i].qs[j] = static_cast<uint8_t>(q0 | q1 << 4);
    }
  }
}

void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t n) {
  const int64_t nb = n / kQuantBlock;
  for (int64_t i = 0; i < nb; ++i, y += kQuantBlock) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < kQuantBlock; ++j) y[j] = static_cast<float>(x[i].qs[j]) * d;
  }
}

void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int64_t n) {
  const int64_t nb = n / kQuantBlock;
  for (int64_t i = 0; i < nb; ++i, y += kQuantBlock) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < kQuantBlock / 2; ++j) {
      y[j] = static_cast<float>((x[i].qs[j] & 0x0f) - 8) * d;
      y[j + kQuantBlock / 2] = static_cast<float>((x[i].qs[j] >> 4) - 8) * d;
    }
  }
}

}  // namespace morphserve
