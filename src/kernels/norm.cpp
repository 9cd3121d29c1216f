#include "kernels/norm.h"

#include "core/error.h"
#include "kernels/elementwise_impl.h"

namespace morphserve {

void rms_norm_with_isa(Isa isa, const float* x, const float* weight, float* out, int64_t n_rows, int64_t n,
                       float eps) {
  kernel_impl::require_isa(isa, "rms_norm");
  if (n_rows < 0 || n <= 0) fail<InvalidArgument>("rms_norm needs n > 0 and n_rows >= 0 (got n={}, n_rows={})", n, n_rows);
  if (!(eps >= 0.0f)) fail<InvalidArgument>("rms_norm eps must be >= 0 (got {})", eps);
  kernel_impl::isa_kernels(isa).rms_norm(x, weight, out, n_rows, n, eps);
}

void rms_norm(const float* x, const float* weight, float* out, int64_t n_rows, int64_t n, float eps) {
  rms_norm_with_isa(active_isa(), x, weight, out, n_rows, n, eps);
}

}  // namespace morphserve
