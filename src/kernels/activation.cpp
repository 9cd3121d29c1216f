#include "kernels/activation.h"

#include "core/error.h"
#include "kernels/elementwise_impl.h"

namespace morphserve {

void silu_mul_with_isa(Isa isa, const float* gate, const float* up, float* out, int64_t n) {
  kernel_impl::require_isa(isa, "silu_mul");
  if (n < 0) fail<InvalidArgument>("silu_mul needs n >= 0 (got {})", n);
  kernel_impl::isa_kernels(isa).silu_mul(gate, up, out, n);
}

void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  silu_mul_with_isa(active_isa(), gate, up, out, n);
}

}  // namespace morphserve
