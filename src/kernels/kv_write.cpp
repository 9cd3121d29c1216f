#include "kernels/kv_write.h"

#include <cstring>

#include "core/error.h"
#include "kernels/cpu_features.h"
#include "kernels/elementwise_impl.h"

namespace morphserve {

void kv_store_row(DType type, const float* src, std::byte* dst, int64_t n) {
  if (n < 0) fail<InvalidArgument>("kv_store_row needs n >= 0 (got {})", n);
  if (type != DType::F32 && type != DType::F16) {
    fail<InvalidArgument>("the KV cache holds f32 or f16, not {}", dtype_name(type));
  }
  if (n == 0) return;
  if (type == DType::F32) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
    return;
  }
  // F16C rounds to nearest even exactly like fp32_to_fp16, so every level writes the same bits (NaN
  // payloads aside).
  kernel_impl::isa_kernels(active_isa()).store_f16(src, dst, n);
}

}  // namespace morphserve
