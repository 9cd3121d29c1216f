#pragma once
// Writing one token's K or V into its paged-KV slot.
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace morphserve {

// Converts n floats (n_kv_heads * head_dim of K or V for one token) to the KV type (F32, or F16
// rounded to nearest even) and writes them at dst, which need not be aligned.
void kv_store_row(DType type, const float* src, std::byte* dst, int64_t n);

}  // namespace morphserve
