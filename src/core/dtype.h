#pragma once
// Element types of tensors and weights. The numeric ids are GGML's, so a GGUF tensor's type field
// maps straight onto DType, and the block layouts of Q8_0/Q4_0 and of the K-quants (Q4_K, Q5_K,
// Q6_K) are byte-compatible with llama.cpp.
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
  Q4_K = 12,  // super-blocks of 256: 8 sub-blocks of 32 nibbles, 6-bit scales and mins
  Q5_K = 13,  // Q4_K plus a fifth bit per weight
  Q6_K = 14,  // super-blocks of 256: 16 sub-blocks of 16 six-bit values, int8 scales
  BF16 = 30,
};

inline constexpr int kQuantBlock = 32;    // weights per Q8_0 / Q4_0 block
inline constexpr int kKQuantBlock = 256;  // weights per K-quant super-block (llama.cpp's QK_K)

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

// The K-quant super-blocks, field for field llama.cpp's block_q4_K / block_q5_K / block_q6_K.
//
// Q4_K / Q5_K: weight i of sub-block j (32 weights each) is d·sc[j]·q − dmin·m[j], with 6-bit sc and
// m packed into `scales` (j < 4: sc = scales[j] & 63, m = scales[j+4] & 63; j >= 4: the low 4 bits
// in scales[j+4] (sc low nibble, m high nibble), the top 2 bits in the top bits of scales[j-4] (sc)
// and scales[j] (m)). qs byte l of 32-byte chunk c holds sub-block 2c in its low nibble and 2c+1 in
// its high one. Q5_K adds bit 2c (sub-block 2c) and 2c+1 of qh[l] as the weight's value 16.
struct BlockQ4_K {
  uint16_t d;          // fp16 super-block scale of the sub-block scales
  uint16_t dmin;       // fp16 super-block scale of the sub-block mins
  uint8_t scales[12];  // 8 six-bit scales and 8 six-bit mins
  uint8_t qs[kKQuantBlock / 2];
};
static_assert(sizeof(BlockQ4_K) == 144);

struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[kKQuantBlock / 8];  // the fifth bits, see BlockQ4_K
  uint8_t qs[kKQuantBlock / 2];
};
static_assert(sizeof(BlockQ5_K) == 176);

// Q6_K: weight = d·scales[s]·(q − 32), q in [0, 63], s the 16-weight sub-block. Per 128-weight half
// h (ql + 64h, qh + 32h), for l < 32: weights l, l+32, l+64, l+96 take their low 4 bits from
// ql[l] low, ql[l+32] low, ql[l] high, ql[l+32] high, and their top 2 bits from bits 0-1, 2-3, 4-5
// and 6-7 of qh[l].
struct BlockQ6_K {
  uint8_t ql[kKQuantBlock / 2];
  uint8_t qh[kKQuantBlock / 4];
  int8_t scales[kKQuantBlock / 16];
  uint16_t d;  // fp16
};
static_assert(sizeof(BlockQ6_K) == 210);

// Is this a GGML type id we know?
bool is_known_dtype(uint32_t ggml_type);
// Elements per block (1 for plain float types, 32 for Q8_0/Q4_0, 256 for the K-quants).
int64_t dtype_block_elements(DType type);
// Bytes per block.
size_t dtype_block_bytes(DType type);
// Bytes of a row of n elements; n must be a multiple of the block size.
size_t dtype_row_bytes(DType type, int64_t n);
// Block-quantized (Q8_0, Q4_0 and the K-quants).
bool dtype_is_quantized(DType type);
// One of the 256-element K-quant types.
bool dtype_is_kquant(DType type);
// Short name as llama.cpp spells it: "f32", "f16", "bf16", "q8_0", "q4_0", "q4_K", "q5_K", "q6_K".
std::string_view dtype_name(DType type);
// Accepts the short names plus the aliases "w8" (q8_0) and "w4" (q4_0); case-insensitive.
std::optional<DType> parse_dtype(std::string_view name);
// Name of a raw GGML type id for error messages ("q4_1", "q6_K", ... or "type 99").
std::string ggml_type_name(uint32_t ggml_type);

}  // namespace morphserve
