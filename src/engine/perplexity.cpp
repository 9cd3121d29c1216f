#include "engine/perplexity.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "engine/kv_block_pool.h"
#include "engine/llama_runner.h"

namespace morphserve {

namespace {

// -log softmax(logits)[target], in double so long runs do not drift.
double negative_log_likelihood(std::span<const float> logits, int32_t target) {
  const float max_logit = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - max_logit);
  return std::log(sum) - (static_cast<double>(logits[static_cast<size_t>(target)]) - max_logit);
}

}  // namespace

PerplexityResult evaluate_perplexity(LlamaRunner& runner, KvBlockPool& kv, std::span<const int32_t> tokens,
                                     int32_t bos, const PerplexityOptions& options,
                                     const std::function<void(int64_t, int64_t, double)>& progress) {
  const int64_t n_ctx = options.n_ctx;
  if (n_ctx < 4) fail<InvalidArgument>("perplexity needs a context of at least 4 tokens, got {}", n_ctx);
  int64_t usable = static_cast<int64_t>(tokens.size());
  if (options.max_tokens > 0) usable = std::min(usable, options.max_tokens);
  const int64_t n_windows = usable / n_ctx;
  if (n_windows == 0) {
    fail<InvalidArgument>("the text has {} tokens, fewer than one window of {}", tokens.size(), n_ctx);
  }
  const int64_t first_scored = n_ctx / 2;
  const int64_t vocab = static_cast<int64_t>(runner.vocab_size());
  const int64_t step = runner.max_batch_tokens();

  PerplexityResult result;
  double sum_nll = 0.0;
  double sum_nll_sq = 0.0;
  std::vector<int32_t> window(static_cast<size_t>(n_ctx));
  for (int64_t w = 0; w < n_windows; ++w) {
    std::copy_n(tokens.begin() + w * n_ctx, n_ctx, window.begin());
    if (bos >= 0) window[0] = bos;  // a model without BOS keeps its first token
    SequenceKv seq;
    if (!seq.reserve(kv, n_ctx)) {
      fail<InvalidArgument>("the KV pool is too small for a perplexity window of {} tokens", n_ctx);
    }
    // Evaluate the window in runner-sized pieces; the KV cache carries the context across them.
    for (int64_t start = 0; start < n_ctx; start += step) {
      const int64_t n = std::min(step, n_ctx - start);
      const BatchSequence piece{std::span<const int32_t>(window).subspan(static_cast<size_t>(start), static_cast<size_t>(n)),
                                start, &seq.blocks, true};
      const std::span<const float> logits = runner.forward(std::span(&piece, 1));
      for (int64_t i = 0; i < n; ++i) {
        const int64_t pos = start + i;
        if (pos < first_scored || pos > n_ctx - 2) continue;
        const double nll = negative_log_likelihood(logits.subspan(static_cast<size_t>(i * vocab), static_cast<size_t>(vocab)),
                                                   window[static_cast<size_t>(pos + 1)]);
        sum_nll += nll;
        sum_nll_sq += nll * nll;
        ++result.n_scored;
      }
    }
    seq.release_all(kv);
    ++result.n_windows;
    if (progress) progress(result.n_windows, n_windows, std::exp(sum_nll / static_cast<double>(result.n_scored)));
  }
  const auto n = static_cast<double>(result.n_scored);
  result.mean_nll = sum_nll / n;
  result.perplexity = std::exp(result.mean_nll);
  // Standard error of the mean NLL, carried to perplexity by the delta method (as llama.cpp does).
  const double variance = std::max(0.0, sum_nll_sq / n - result.mean_nll * result.mean_nll);
  result.perplexity_error = n > 1 ? result.perplexity * std::sqrt(variance / (n - 1)) : 0.0;
  return result;
}

}  // namespace morphserve
