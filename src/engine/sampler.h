#pragma once
// Picks the next token from logits: greedy, or temperature sampling narrowed by top-k, top-p and
// min-p. Each sampler owns its random generator, seeded per request, so a request's output is
// reproducible whatever else runs beside it.
#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <vector>

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

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  int32_t sample(std::span<const float> logits);
  uint64_t seed() const { return seed_; }

 private:
  SamplingParams params_;
  uint64_t seed_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> candidates_;
};

// Index of the largest logit (lowest index on ties).
int32_t argmax(std::span<const float> logits);

}  // namespace morphserve
