#pragma once
// Llama 3.1's "llama3" RoPE scaling as per-pair frequency divisors: what llama.cpp's converter
// writes as rope_freqs.weight and what a Hugging Face config's rope_scaling asks for.
#include <vector>

namespace morphserve {

struct Llama3RopeScaling {
  double factor = 32.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  double original_context = 8192.0;  // original_max_position_embeddings
};

// rope_dims/2 divisors: `factor` for wavelengths beyond original_context/low_freq_factor, 1 for
// those under original_context/high_freq_factor, interpolated smoothly in between (Meta's formula).
std::vector<float> llama3_rope_freq_factors(const Llama3RopeScaling& scaling, double freq_base, int rope_dims);

}  // namespace morphserve
