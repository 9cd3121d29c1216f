#pragma once
// The SwiGLU activation of the Llama MLP.
#include <cstdint>

#include "kernels/cpu_features.h"

namespace morphserve {

// out[i] = silu(gate[i]) * up[i], silu(g) = g * sigmoid(g) = g / (1 + exp(-g)). out may alias gate or up.
void silu_mul(const float* gate, const float* up, float* out, int64_t n);
// Same at an explicit instruction set; throws InvalidArgument if this CPU lacks it.
void silu_mul_with_isa(Isa isa, const float* gate, const float* up, float* out, int64_t n);

}  // namespace morphserve
