#pragma once
// RMSNorm, the normalisation every Llama block applies before attention and before the MLP.
#include <cstdint>

#include "kernels/cpu_features.h"

namespace morphserve {

// out[r][i] = x[r][i] / sqrt(mean_i(x[r][i]^2) + eps) * weight[i] for each of n_rows rows of n
// floats. out may alias x (the runner normalises in place).
void rms_norm(const float* x, const float* weight, float* out, int64_t n_rows, int64_t n, float eps);
// Same at an explicit instruction set; throws InvalidArgument if this CPU lacks it.
void rms_norm_with_isa(Isa isa, const float* x, const float* weight, float* out, int64_t n_rows, int64_t n,
                       float eps);

}  // namespace morphserve
