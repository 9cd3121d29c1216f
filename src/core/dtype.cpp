#include "core/dtype.h"

#include <algorithm>
#include <cctype>

#include "core/error.h"

namespace morphserve {

bool is_known_dtype(uint32_t t) {
  switch (static_cast<DType>(t)) {
    case DType::F32:
    case DType::F16:
    case DType::Q4_0:
    case DType::Q8_0:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
    case DType::BF16:
      return true;
  }
  return false;
}

int64_t dtype_block_elements(DType type) {
  if (dtype_is_kquant(type)) return kKQuantBlock;
  return dtype_is_quantized(type) ? kQuantBlock : 1;
}

size_t dtype_block_bytes(DType type) {
  switch (type) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::Q8_0: return sizeof(BlockQ8_0);
    case DType::Q4_0: return sizeof(BlockQ4_0);
    case DType::Q4_K: return sizeof(BlockQ4_K);
    case DType::Q5_K: return sizeof(BlockQ5_K);
    case DType::Q6_K: return sizeof(BlockQ6_K);
  }
  fail<InvalidArgument>("unknown dtype {}", static_cast<uint32_t>(type));
}

size_t dtype_row_bytes(DType type, int64_t n) {
  const int64_t block = dtype_block_elements(type);
  if (n < 0 || n % block != 0) {
    fail<InvalidArgument>("a {} row needs a multiple of {} elements, got {}", dtype_name(type), block, n);
  }
  return static_cast<size_t>(n / block) * dtype_block_bytes(type);
}

bool dtype_is_quantized(DType type) { return type == DType::Q8_0 || type == DType::Q4_0 || dtype_is_kquant(type); }

bool dtype_is_kquant(DType type) { return type == DType::Q4_K || type == DType::Q5_K || type == DType::Q6_K; }

std::string_view dtype_name(DType type) {
  switch (type) {
    case DType::F32: return "f32";
    case DType::F16: return "f16";
    case DType::BF16: return "bf16";
    case DType::Q8_0: return "q8_0";
    case DType::Q4_0: return "q4_0";
    case DType::Q4_K: return "q4_K";
    case DType::Q5_K: return "q5_K";
    case DType::Q6_K: return "q6_K";
  }
  return "unknown";
}

std::optional<DType> parse_dtype(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower == "f32" || lower == "fp32") return DType::F32;
  if (lower == "f16" || lower == "fp16") return DType::F16;
  if (lower == "bf16") return DType::BF16;
  if (lower == "q8_0" || lower == "w8") return DType::Q8_0;
  if (lower == "q4_0" || lower == "w4") return DType::Q4_0;
  if (lower == "q4_k") return DType::Q4_K;
  if (lower == "q5_k") return DType::Q5_K;
  if (lower == "q6_k") return DType::Q6_K;
  return std::nullopt;
}

std::string ggml_type_name(uint32_t t) {
  static constexpr const char* kNames[] = {
      "f32",  "f16",  "q4_0", "q4_1", "q4_2", "q4_3", "q5_0",    "q5_1",    "q8_0",  "q8_1",
      "q2_K", "q3_K", "q4_K", "q5_K", "q6_K", "q8_K", "iq2_xxs", "iq2_xs",  "iq3_xxs", "iq1_s",
      "iq4_nl", "iq3_s", "iq2_s", "iq4_xs", "i8", "i16", "i32", "i64", "f64", "iq1_m", "bf16"};
  if (t < std::size(kNames)) return kNames[t];
  return fmt::format("type {}", t);
}

}  // namespace morphserve
