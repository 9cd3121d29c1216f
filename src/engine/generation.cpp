#include "engine/generation.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"
#include "engine/kv_block_pool.h"
#include "engine/llama_runner.h"

namespace morphserve {

GenerationStats generate_tokens(LlamaRunner& runner, KvBlockPool& kv, std::span<const int32_t> prompt,
                                const GenerationOptions& options, const std::function<bool(int32_t)>& on_token) {
  if (prompt.empty()) fail<InvalidArgument>("the prompt has no tokens");
  const auto n_prompt = static_cast<int64_t>(prompt.size());
  const int64_t context = runner.context_length();
  if (n_prompt > context || options.max_new_tokens > context - n_prompt) {
    fail<InvalidArgument>("{} prompt + {} new tokens exceed the model's context of {}", n_prompt, options.max_new_tokens,
                          context);
  }
  SequenceKv seq;
  if (!seq.reserve(kv, n_prompt + options.max_new_tokens)) {
    fail<InvalidArgument>("{} prompt + {} new tokens do not fit in the KV cache ({} blocks of {})", n_prompt,
                          options.max_new_tokens, kv.capacity_blocks(), kv.layout().block_size);
  }
  struct Release {
    SequenceKv& seq;
    KvBlockPool& kv;
    ~Release() { seq.release_all(kv); }
  } release{seq, kv};

  using Clock = std::chrono::steady_clock;
  GenerationStats stats;
  stats.prompt_tokens = n_prompt;
  Sampler sampler(options.sampling);
  const auto vocab = static_cast<size_t>(runner.vocab_size());
  const auto start = Clock::now();

  std::span<const float> logits;
  for (int64_t pos = 0; pos < n_prompt; pos += runner.max_batch_tokens()) {
    const int64_t n = std::min(runner.max_batch_tokens(), n_prompt - pos);
    const BatchSequence chunk{prompt.subspan(static_cast<size_t>(pos), static_cast<size_t>(n)), pos, &seq.blocks, false};
    logits = runner.forward(std::span(&chunk, 1));
  }
  auto decode_start = Clock::now();
  stats.prefill_seconds = std::chrono::duration<double>(decode_start - start).count();

  int64_t pos = n_prompt;
  for (int64_t i = 0; i < options.max_new_tokens; ++i) {
    const int32_t token = sampler.sample(logits.first(vocab));
    ++stats.generated_tokens;
    if (!on_token(token) || token == options.eos || i + 1 == options.max_new_tokens) break;
    const BatchSequence step{std::span(&token, 1), pos++, &seq.blocks, false};
    logits = runner.forward(std::span(&step, 1));
  }
  stats.decode_seconds = std::chrono::duration<double>(Clock::now() - decode_start).count();
  return stats;
}

}  // namespace morphserve
