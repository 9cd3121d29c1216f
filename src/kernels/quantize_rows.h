#pragma once
// Row quantizers for the GGUF block formats, bit-identical to llama.cpp's reference
// (quantize_row_q8_0_ref / quantize_row_q4_0_ref in ggml-quants.c): same scale formula, same
// rounding, fp16 scales rounded to nearest even. Replicas we write must match what llama.cpp would
// produce from the same F32 data, so these are plain scalar loops, not SIMD approximations.
#include <cstdint>

#include "core/dtype.h"

namespace morphserve {

// n must be a multiple of 32. d = max|x|/127, q = roundf(x/d) (ties away from zero).
void quantize_row_q8_0_ref(const float* x, BlockQ8_0* y, int64_t n);
// n must be a multiple of 32. max = the signed value with the largest magnitude (the first one on
// ties), d = max/-8, q = min(15, trunc(x/d + 8.5)); byte j = q[j] | q[j+16] << 4.
void quantize_row_q4_0_ref(const float* x, BlockQ4_0* y, int64_t n);
// x = q * d.
void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t n);
// x = (q - 8) * d.
void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int64_t n);

}  // namespace morphserve
