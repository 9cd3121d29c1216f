#pragma once
// Rotary position embeddings (RoPE), applied in place to the queries and keys of a batch.
#include <cstdint>

namespace morphserve {

struct RopeParams {
  int head_dim = 0;
  int rope_dims = 0;        // rotated dims per head, even, <= head_dim; the rest pass through. 0 means head_dim.
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;  // linear position scaling (llama.rope.scale_linear -> 1/scale)
  bool neox = false;        // false: llama's adjacent pairs (x[2i], x[2i+1]); true: halves (x[i], x[i+rope_dims/2])
  // rope_dims/2 divisors of the pairs' frequencies (Llama 3.1's rope_freqs), or null for none.
  const float* freq_factors = nullptr;
};

// x: [n_tokens][n_heads][head_dim]; token t sits at positions[t]. Pair i is rotated by
// theta_i = positions[t] * freq_scale * freq_base^(-2i/rope_dims) / freq_factors[i]. The angles and their cos/sin
// are computed in double once per token, so the result is the float rounding of the exact rotation
// (reference logits are checked to 1e-4). Scalar only: it is a tiny share of a forward pass.
void rope(float* x, int64_t n_tokens, int n_heads, const int32_t* positions, const RopeParams& params);

}  // namespace morphserve
