// RoPE stays scalar: per token it costs rope_dims/2 double cos/sin pairs plus one rotation per
// head, a negligible share of a forward pass next to the matmuls and attention.
#include "kernels/rope.h"

#include <cmath>

#include "core/error.h"

namespace morphserve {
namespace {

// The per-call frequency and per-token cos/sin caches live on the stack (no allocation per call).
constexpr int kMaxPairs = 256;

}  // namespace

void rope(float* x, int64_t n_tokens, int n_heads, const int32_t* positions, const RopeParams& params) {
  const int head_dim = params.head_dim;
  const int rope_dims = params.rope_dims == 0 ? head_dim : params.rope_dims;
  if (head_dim <= 0) fail<InvalidArgument>("rope needs head_dim > 0 (got {})", head_dim);
  if (rope_dims <= 0 || rope_dims > head_dim || rope_dims % 2 != 0) {
    fail<InvalidArgument>("rope_dims must be even and in (0, head_dim={}] (got {})", head_dim, rope_dims);
  }
  if (n_tokens < 0 || n_heads <= 0) {
    fail<InvalidArgument>("rope needs n_tokens >= 0 and n_heads > 0 (got {}, {})", n_tokens, n_heads);
  }
  if (!(params.freq_base > 0.0f) || !std::isfinite(params.freq_scale)) {
    fail<InvalidArgument>("rope needs freq_base > 0 and a finite freq_scale (got {}, {})", params.freq_base,
                          params.freq_scale);
  }
  const int n_pairs = rope_dims / 2;
  if (n_pairs > kMaxPairs) fail<InvalidArgument>("rope supports rope_dims up to {} (got {})", 2 * kMaxPairs, rope_dims);
  // In neox mode pair i is (x[i], x[i + n_pairs]); in llama mode it is (x[2i], x[2i+1]).
  const int partner = params.neox ? n_pairs : 1;
  const int stride = params.neox ? 1 : 2;
  double freq[kMaxPairs];
  for (int i = 0; i < n_pairs; ++i) {
    // freq_scale * base^(-2i/rope_dims) / factor, as a float64 reference computes it.
    freq[i] = static_cast<double>(params.freq_scale) *
              std::pow(static_cast<double>(params.freq_base), -2.0 * i / rope_dims);
    if (params.freq_factors) {
      const double factor = params.freq_factors[i];
      if (!(factor > 0)) fail<InvalidArgument>("rope frequency factor {} is {}; factors must be positive", i, factor);
      freq[i] /= factor;
    }
  }
  double cos_cache[kMaxPairs];
  double sin_cache[kMaxPairs];
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int i = 0; i < n_pairs; ++i) {
      const double theta = static_cast<double>(positions[t]) * freq[i];
      cos_cache[i] = std::cos(theta);
      sin_cache[i] = std::sin(theta);
    }
    float* token = x + t * n_heads * int64_t{head_dim};
    for (int h = 0; h < n_heads; ++h) {
      float* head = token + int64_t{h} * head_dim;
      for (int i = 0; i < n_pairs; ++i) {
        float* a = head + i * stride;
        const double x0 = a[0];
        const double x1 = a[partner];
        a[0] = static_cast<float>(x0 * cos_cache[i] - x1 * sin_cache[i]);
        a[partner] = static_cast<float>(x0 * sin_cache[i] + x1 * cos_cache[i]);
      }
    }
  }
}

}  // namespace morphserve
