#pragma once
// Element types a safetensors header may name (the reference implementation's full list). Only
// F32, F16 and BF16 map onto a morphserve DType; files with the others still parse, so a checkpoint
// holding, say, I64 position ids or FP8 scales is refused per tensor, not per file.
#include <cstdint>
#include <optional>
#include <string_view>

#include "core/dtype.h"

namespace morphserve {

enum class SafetensorsDType : uint8_t {
  BOOL, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ, I16, U16, F16, BF16, I32, U32, F32, C64,
  F64, I64, U64, F4, F6_E2M3, F6_E3M2,
};

// The spelling in the header ("BF16", "F8_E4M3", ...).
std::string_view safetensors_dtype_name(SafetensorsDType type);
// Exact, case-sensitive match of a header's spelling; nullopt for anything else.
std::optional<SafetensorsDType> parse_safetensors_dtype(std::string_view name);
// Bits per element: 4 and 6 for the sub-byte float formats, a multiple of 8 otherwise.
int safetensors_dtype_bits(SafetensorsDType type);
// F32, F16 and BF16; nullopt for every type morphserve cannot compute with.
std::optional<DType> to_dtype(SafetensorsDType type);
// The header spelling of a morphserve float type (F32, F16, BF16); nullopt for quantized types,
// which safetensors has no name for.
std::optional<SafetensorsDType> to_safetensors_dtype(DType type);

}  // namespace morphserve
