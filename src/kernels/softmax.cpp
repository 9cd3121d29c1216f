#include "kernels/softmax.h"

#include "core/error.h"
#include "kernels/elementwise_impl.h"

namespace morphserve {

void softmax_with_isa(Isa isa, float* x, int64_t n) {
  kernel_impl::require_isa(isa, "softmax");
  if (n < 0) fail<InvalidArgument>("softmax needs n >= 0 (got {})", n);
  kernel_impl::isa_kernels(isa).softmax(x, n);
}

void softmax(float* x, int64_t n) { softmax_with_isa(active_isa(), x, n); }

}  // namespace morphserve
