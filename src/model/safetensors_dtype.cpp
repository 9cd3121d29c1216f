#include "model/safetensors_dtype.h"

#include <array>
#include <utility>

namespace morphserve {

namespace {

struct SafetensorsDTypeInfo {
  SafetensorsDType type;
  std::string_view name;
  int bits;
};

// In enum order, so a type's entry is at its own index.
constexpr std::array<SafetensorsDTypeInfo, 22> kSafetensorsDTypes = {{
    {SafetensorsDType::BOOL, "BOOL", 8},
    {SafetensorsDType::U8, "U8", 8},
    {SafetensorsDType::I8, "I8", 8},
    {SafetensorsDType::F8_E5M2, "F8_E5M2", 8},
    {SafetensorsDType::F8_E4M3, "F8_E4M3", 8},
    {SafetensorsDType::F8_E8M0, "F8_E8M0", 8},
    {SafetensorsDType::F8_E4M3FNUZ, "F8_E4M3FNUZ", 8},
    {SafetensorsDType::F8_E5M2FNUZ, "F8_E5M2FNUZ", 8},
    {SafetensorsDType::I16, "I16", 16},
    {SafetensorsDType::U16, "U16", 16},
    {SafetensorsDType::F16, "F16", 16},
    {SafetensorsDType::BF16, "BF16", 16},
    {SafetensorsDType::I32, "I32", 32},
    {SafetensorsDType::U32, "U32", 32},
    {SafetensorsDType::F32, "F32", 32},
    {SafetensorsDType::C64, "C64", 64},
    {SafetensorsDType::F64, "F64", 64},
    {SafetensorsDType::I64, "I64", 64},
    {SafetensorsDType::U64, "U64", 64},
    {SafetensorsDType::F4, "F4", 4},
    {SafetensorsDType::F6_E2M3, "F6_E2M3", 6},
    {SafetensorsDType::F6_E3M2, "F6_E3M2", 6},
}};

constexpr bool table_in_enum_order() {
  for (size_t i = 0; i < kSafetensorsDTypes.size(); ++i) {
    if (static_cast<size_t>(kSafetensorsDTypes[i].type) != i) return false;
  }
  return true;
}
static_assert(table_in_enum_order());

const SafetensorsDTypeInfo& safetensors_dtype_info(SafetensorsDType type) { return kSafetensorsDTypes[static_cast<size_t>(type)]; }

}  // namespace

std::string_view safetensors_dtype_name(SafetensorsDType type) { return safetensors_dtype_info(type).name; }

std::optional<SafetensorsDType> parse_safetensors_dtype(std::string_view name) {
  for (const SafetensorsDTypeInfo& entry : kSafetensorsDTypes) {
    if (entry.name == name) return entry.type;
  }
  return std::nullopt;
}

int safetensors_dtype_bits(SafetensorsDType type) { return safetensors_dtype_info(type).bits; }

std::optional<DType> to_dtype(SafetensorsDType type) {
  switch (type) {
    case SafetensorsDType::F32: return DType::F32;
    case SafetensorsDType::F16: return DType::F16;
    case SafetensorsDType::BF16: return DType::BF16;
    default: return std::nullopt;
  }
}

std::optional<SafetensorsDType> to_safetensors_dtype(DType type) {
  switch (type) {
    case DType::F32: return SafetensorsDType::F32;
    case DType::F16: return SafetensorsDType::F16;
    case DType::BF16: return SafetensorsDType::BF16;
    default: return std::nullopt;
  }
}

}  // namespace morphserve
