#pragma once
// Whole-row conversions between f32 and every weight type (embedding lookups, replica building,
// tests). Float types use the active ISA's vector converters; Q8_0/Q4_0 and the K-quants use
// llama.cpp's reference quantizers so the bytes match what llama.cpp writes.
#include <cstdint>

#include "core/dtype.h"

namespace morphserve {

// Any type -> f32. n must be a multiple of the type's block: 32 for Q8_0/Q4_0, 256 for
// Q4_K/Q5_K/Q6_K (InvalidArgument otherwise).
void dequantize_row(DType type, const void* src, float* dst, int64_t n);
// f32 -> any type: F16 and BF16 round to nearest even, quantized types as quantize_row_*_ref.
// n must be a multiple of the type's block, as for dequantize_row.
void convert_row_from_f32(DType type, const float* src, void* dst, int64_t n);

}  // namespace morphserve
