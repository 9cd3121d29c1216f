#include "kernels/softmax.h"

#include "core/error.h"
#include "kernels/elementwise_impl.h"

namespace morphserve {

void softmax_with_isa(Isa isa, float* x, int64_t n) {
  kernel_impl::require_isa(isa, "softmax");
  if (n < 0) fail<InvalidArgument>("softmax needs n >= 0 (got {})", n);
  switch (isa) {
    case Isa::Scalar: return kernel_impl::scalar::softmax(x, n);
    case Isa::Avx2: return kernel_impl::avx2::softmax(x, n);
    case Isa::Avx512: return kernel_impl::avx512::softmax(x, n);
  }
}

void softmax(float* x, int64_t n) { softmax_with_isa(active_isa(), x, n); }

}  // namespace morphserve
