#pragma once
// Element types of tensors and weights. The numeric ids are GGML's, so a GGUF tensor's type field
// maps straight onto DType, and the block layouts of Q8_0/Q4_0 are byte-compatible with llama.cpp.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace morphserve {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,  // "W4": blocks of 32 nibbles + fp16 scale
  Q8_0 = 8,  // "W8": blocks of 32 int8 + fp16 scale
  BF16 = 30,
};

inline constexpr int kQuantBlock = 32;  // weights per Q8_0 / Q4_0 block

struct BlockQ8_0 {
  uint16_t d;  // fp16 scale
  int8_t qs[kQuantBlock];
};
static_assert(sizeof(BlockQ8_0) == 34);

struct BlockQ4_0 {
  uint16_t d;                    // fp16 scale
  uint8_t qs[kQuantBlock / 2];   // byte j: weight j in the low nibble, weight j+16 in the high one
};
static_assert(sizeof(BlockQ4_0) == 18);

// Is this a GGML type id we know?
bool is_known_dtype(uint32_t ggml_type);
// Elements per block (1 for plain float types, 32 for Q8_0/Q4_0).
int64_t dtype_block_elements(DType type);
// Bytes per block.
size_t dtype_block_bytes(DType type);
// Bytes of a row of n elements; n must be a multiple of the block size.
size_t dtype_row_bytes(DType type, int64_t n);
bool dtype_is_quantized(DType type);
// Lower-case short name: "f32", "f16", "bf16", "q8_0", "q4_0".
std::string_view dtype_name(DType type);
// Accepts the short names plus the aliases "w8" (q8_0) and "w4" (q4_0); case-insensitive.
std::optional<DType> parse_dtype(std::string_view name);
// Name of a raw GGML type id for error messages ("q4_1", "q6_K", ... or "type 99").
std::string ggml_type_name(uint32_t ggml_type);

}  // namespace morphserve
