#pragma once
// Picks the next token from logits: greedy, or temperature sampling narrowed by top-k, top-p and
// min-p. Each sampler owns its random generator, seeded per request, so a request's output is
// reproducible whatever else runs beside it.
#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <unordered_map>
#include <vector>

#include "engine/generated_token.h"

namespace morphserve {

struct SamplingParams {
  float temperature = 0.0f;  // 0: greedy
  int top_k = 0;             // 0: off
  float top_p = 1.0f;        // 1: off
  float min_p = 0.0f;        // 0: off
  std::optional<uint64_t> seed;  // none: a random seed

  // Throws InvalidArgument naming the parameter and its valid range.
  void validate() const;
};

// OpenAI's presence and frequency penalties, [-2, 2] each: a token's logit drops by
// frequency * (times generated so far) + presence (once generated at all).
struct Penalties {
  float presence = 0.0f;
  float frequency = 0.0f;
  bool any() const { return presence != 0.0f || frequency != 0.0f; }
};

class Sampler {
 public:
  // `logprobs`: -1 none, 0 the chosen token's, n > 0 also the n most likely tokens'.
  explicit Sampler(const SamplingParams& params, Penalties penalties = {}, int logprobs = -1);

  // The next token of a request: penalties applied from the tokens it generated so far, sampled,
  // with its log-probabilities when asked for, and remembered for the penalties of the next one.
  GeneratedToken next(std::span<const float> logits);
  // Samples from `logits` as they are (no penalties, no logprobs, nothing remembered).
  int32_t sample(std::span<const float> logits);
  uint64_t seed() const { return seed_; }

 private:
  SamplingParams params_;
  Penalties penalties_;
  int logprobs_;
  uint64_t seed_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> candidates_;
  std::unordered_map<int32_t, int> token_counts_;  // generated tokens, for the penalties
  std::vector<float> penalised_;                    // scratch: the logits after penalties
};

// Index of the largest logit (lowest index on ties).
int32_t argmax(std::span<const float> logits);

}  // namespace morphserve
