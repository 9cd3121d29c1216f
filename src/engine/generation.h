#pragma once
// Generation for one sequence: prefill the prompt in runner-sized chunks, then decode token by
// token. Used by `generate`, the perplexity-free tools and tests; the server's scheduler batches
// many sequences instead.
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "engine/sampler.h"

namespace morphserve {

class LlamaRunner;
class KvBlockPool;

struct GenerationOptions {
  int64_t max_new_tokens = 64;
  SamplingParams sampling;
  int32_t eos = -1;  // stop after this token (it is still reported); -1: never
};

struct GenerationStats {
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  double prefill_seconds = 0.0;  // prompt evaluation up to and including the first token's logits
  double decode_seconds = 0.0;   // every later forward pass
};

// Calls on_token(id) for each generated token; returning false stops early. Throws
// InvalidArgument when the prompt is empty or prompt + max_new_tokens exceeds the context or the
// KV pool. The sequence's blocks are returned to the pool before it returns.
GenerationStats generate_tokens(LlamaRunner& runner, KvBlockPool& kv, std::span<const int32_t> prompt,
                                const GenerationOptions& options, const std::function<bool(int32_t)>& on_token);

}  // namespace morphserve
