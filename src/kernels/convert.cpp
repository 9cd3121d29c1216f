#include "kernels/convert.h"

#include <cstring>

#include "core/error.h"
#include "kernels/cpu_features.h"
#include "kernels/kquant_rows.h"
#include "kernels/matmul_impl.h"
#include "kernels/quantize_rows.h"

namespace morphserve {
namespace {

const matmul_detail::RowConverters& converters() {
  static const matmul_detail::RowConverters& chosen = [&]() -> const matmul_detail::RowConverters& {
    switch (active_isa()) {
      case Isa::Avx512: return matmul_detail::avx512::row_converters();
      case Isa::Avx2: return matmul_detail::avx2::row_converters();
      case Isa::Scalar: break;
    }
    return matmul_detail::scalar::row_converters();
  }();
  return chosen;
}

void check_blocks(DType type, int64_t n) {
  const int64_t block = dtype_block_elements(type);
  if (n % block != 0) {
    fail<InvalidArgument>("a {} row needs a multiple of {} elements, got {}", dtype_name(type), block, n);
  }
}

}  // namespace

void dequantize_row(DType type, const void* src, float* dst, int64_t n) {
  check_blocks(type, n);
  switch (type) {
    case DType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float)); return;
    case DType::F16: converters().f16_to_f32(static_cast<const uint16_t*>(src), dst, n); return;
    case DType::BF16: converters().bf16_to_f32(static_cast<const uint16_t*>(src), dst, n); return;
    case DType::Q8_0: dequantize_row_q8_0(static_cast<const BlockQ8_0*>(src), dst, n); return;
    case DType::Q4_0: dequantize_row_q4_0(static_cast<const BlockQ4_0*>(src), dst, n); return;
    case DType::Q4_K: dequantize_row_q4_K(static_cast<const BlockQ4_K*>(src), dst, n); return;
    case DType::Q5_K: dequantize_row_q5_K(static_cast<const BlockQ5_K*>(src), dst, n); return;
    case DType::Q6_K: dequantize_row_q6_K(static_cast<const BlockQ6_K*>(src), dst, n); return;
  }
  fail<InvalidArgument>("dequantize_row: unsupported type {}", static_cast<uint32_t>(type));
}

void convert_row_from_f32(DType type, const float* src, void* dst, int64_t n) {
  check_blocks(type, n);
  switch (type) {
    case DType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float)); return;
    case DType::F16: converters().f32_to_f16(src, static_cast<uint16_t*>(dst), n); return;
    case DType::BF16: converters().f32_to_bf16(src, static_cast<uint16_t*>(dst), n); return;
    case DType::Q8_0: quantize_row_q8_0_ref(src, static_cast<BlockQ8_0*>(dst), n); return;
    case DType::Q4_0: quantize_row_q4_0_ref(src, static_cast<BlockQ4_0*>(dst), n); return;
    case DType::Q4_K: quantize_row_q4_K_ref(src, static_cast<BlockQ4_K*>(dst), n); return;
    case DType::Q5_K: quantize_row_q5_K_ref(src, static_cast<BlockQ5_K*>(dst), n); return;
    case DType::Q6_K: quantize_row_q6_K_ref(src, static_cast<BlockQ6_K*>(dst), n); return;
  }
  fail<InvalidArgument>("convert_row_from_f32: unsupported type {}", static_cast<uint32_t>(type));
}

}  // namespace morphserve
