#pragma once
// Perplexity the way llama.cpp's llama-perplexity computes it (see shared/REFERENCE.md): the token
// stream is cut into non-overlapping windows of n_ctx tokens, each evaluated from an empty cache
// with its first token replaced by BOS, and only the second half of each window is scored.
#include <cstdint>
#include <functional>
#include <span>

namespace morphserve {

class LlamaRunner;
class KvBlockPool;

struct PerplexityOptions {
  int64_t n_ctx = 512;
  int64_t max_tokens = 0;  // use at most this many tokens (whole windows); 0: all
};

struct PerplexityResult {
  double perplexity = 0.0;
  double perplexity_error = 0.0;  // one standard error, as llama.cpp prints after "±"
  double mean_nll = 0.0;
  int64_t n_windows = 0;
  int64_t n_scored = 0;
};

// bos < 0 (a vocabulary without one) leaves each window's first token as it is.
// progress(windows_done, windows_total, perplexity_so_far) is called after every window.
// Throws InvalidArgument when the text is shorter than one window or n_ctx is unusable.
PerplexityResult evaluate_perplexity(LlamaRunner& runner, KvBlockPool& kv, std::span<const int32_t> tokens,
                                     int32_t bos, const PerplexityOptions& options,
                                     const std::function<void(int64_t, int64_t, double)>& progress = {});

}  // namespace morphserve
