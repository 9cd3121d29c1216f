#pragma once
// Softmax over one row, used by the sampler (attention has its own online softmax).
#include <cstdint>

#include "kernels/cpu_features.h"

namespace morphserve {

// In place: x[i] = exp(x[i] - max) / sum_j exp(x[j] - max). Subtracting the max keeps exp from
// overflowing; -inf entries (masked logits) become 0. A row whose entries are all -inf, or that
// holds +inf or NaN, has no distribution and comes out NaN, as in PyTorch.
void softmax(float* x, int64_t n);
// Same at an explicit instruction set; throws InvalidArgument if this CPU lacks it.
void softmax_with_isa(Isa isa, float* x, int64_t n);

}  // namespace morphserve
