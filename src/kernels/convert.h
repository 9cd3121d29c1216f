#pragma once
// Whole-row conversions between f32 and every weight type (embedding lookups, replica building,
// tests). Float types use the active ISA's vector converters; Q8_0/Q4_0 use llama.cpp's reference
// quantizers so the bytes match what llama.cpp writes.
#include <cstdint>

#include "core/dtype.h"

namespace morphserve {

// Any type -> f32. n must be a multiple of 32 for Q8_0/Q4_0 (InvalidArgument otherwise).
void dequantize_row(DType type, const void* src, float* dst, int64_t n);
// f32 -> any type: F16 and BF16 round to nearest even, Q8_0/Q4_0 as quantize_row_*_ref.
// n must be a multiple of 32 for Q8_0/Q4_0 (InvalidArgument otherwise).
void convert_row_from_f32(DType type, const float* src, void* dst, int64_t n);

}  // namespace morphserve
