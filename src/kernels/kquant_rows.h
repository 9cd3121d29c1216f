#pragma once
// Row quantizers and dequantizers for GGML's K-quant super-block formats (Q4_K, Q5_K, Q6_K; layouts
// in core/dtype.h), bit-identical to llama.cpp's reference quantize_row_q{4,5,6}_K_ref and
// dequantize_row_q{4,5,6}_K: llama-quantize without an importance matrix writes exactly these bytes,
// so replicas we build match the files llama.cpp makes from the same F32 data. Plain scalar loops in
// llama.cpp's operation order (float rounding decides which quant a weight gets).
#include <cstdint>

#include "core/dtype.h"

namespace morphserve {

// n must be a multiple of 256. Per sub-block of 32: the best (scale, min) of an offset grid search
// weighted by rms + |x| (make_qkx2_quants), then 6-bit sub-block scales and mins relative to the
// largest, then the weights requantized against the rounded scales.
void quantize_row_q4_K_ref(const float* x, BlockQ4_K* y, int64_t n);
void quantize_row_q5_K_ref(const float* x, BlockQ5_K* y, int64_t n);
// n must be a multiple of 256. Per sub-block of 16: a symmetric scale from an x²-weighted search
// (make_qx_quants), then int8 sub-block scales relative to the largest, then requantization.
void quantize_row_q6_K_ref(const float* x, BlockQ6_K* y, int64_t n);

// x = d·sc·q − dmin·m (Q4_K, Q5_K), x = d·sc·(q − 32) (Q6_K); n a multiple of 256.
void dequantize_row_q4_K(const BlockQ4_K* x, float* y, int64_t n);
void dequantize_row_q5_K(const BlockQ5_K* x, float* y, int64_t n);
void dequantize_row_q6_K(const BlockQ6_K* x, float* y, int64_t n);

// Sub-block j's (0..7) 6-bit scale and min from a Q4_K / Q5_K `scales` field (llama.cpp's
// get_scale_min_k4).
inline void kquant_scale_min(int j, const uint8_t* scales, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = scales[j] & 63;
    *m = scales[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((scales[j + 4] & 0x0f) | ((scales[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
  }
}

}  // namespace morphserve
