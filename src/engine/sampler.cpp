#include "engine/sampler.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace morphserve {

void SamplingParams::validate() const {
  if (!(temperature >= 0.0f && temperature <= 100.0f)) {
    fail<InvalidArgument>("temperature must be between 0 and 100, got {}", temperature);
  }
  if (top_k < 0) fail<InvalidArgument>("top_k must be 0 (off) or positive, got {}", top_k);
  if (!(top_p > 0.0f && top_p <= 1.0f)) fail<InvalidArgument>("top_p must be in (0, 1], got {}", top_p);
  if (!(min_p >= 0.0f && min_p <= 1.0f)) fail<InvalidArgument>("min_p must be in [0, 1], got {}", min_p);
}

int32_t argmax(std::span<const float> logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

Sampler::Sampler(const SamplingParams& params, Penalties penalties, int logprobs)
    : params_(params),
      penalties_(penalties),
      logprobs_(logprobs),
      seed_(params.seed ? *params.seed : std::random_device{}()),
      rng_(seed_) {
  params_.validate();
}

GeneratedToken Sampler::next(std::span<const float> logits) {
  std::span<const float> sampled_from = logits;
  if (penalties_.any()) {
    penalised_.assign(logits.begin(), logits.end());
    for (const auto& [token, count] : token_counts_) {
      penalised_[static_cast<size_t>(token)] -= penalties_.frequency * static_cast<float>(count) + penalties_.presence;
    }
    sampled_from = penalised_;
  }
  GeneratedToken generated;
  generated.token = sample(sampled_from);
  if (logprobs_ >= 0) {
    // Log-probabilities of the model's own distribution (before penalties), as vLLM reports them.
    const float max_logit = *std::max_element(logits.begin(), logits.end());
    double sum = 0.0;
    for (float v : logits) sum += std::exp(static_cast<double>(v - max_logit));
    const auto log_sum = static_cast<float>(std::log(sum)) + max_logit;
    generated.logprob = logits[static_cast<size_t>(generated.token)] - log_sum;
    if (logprobs_ > 0) {
      std::vector<int32_t> ids(logits.size());
      for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
      const auto k = std::min<size_t>(static_cast<size_t>(logprobs_), ids.size());
      std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(),
                        [&](int32_t a, int32_t b) { return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)]; });
      for (size_t i = 0; i < k; ++i) generated.top_logprobs.push_back({ids[i], logits[static_cast<size_t>(ids[i])] - log_sum});
    }
  }
  if (penalties_.any()) ++token_counts_[generated.token];
  return generated;
}

int32_t Sampler::sample(std::span<const float> logits) {
  if (logits.empty()) fail<InvalidArgument>("cannot sample from empty logits");
  if (params_.temperature == 0.0f) return argmax(logits);

  // Candidates sorted by logit; top-k first because it bounds the work of everything after it.
  candidates_.clear();
  candidates_.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) candidates_.emplace_back(logits[i], static_cast<int32_t>(i));
  size_t keep = candidates_.size();
  if (params_.top_k > 0) keep = std::min(keep, static_cast<size_t>(params_.top_k));
  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(keep), candidates_.end(), by_logit);
  candidates_.resize(keep);

  // Softmax at the temperature.
  const float max_logit = candidates_.front().first;
  double total = 0.0;
  for (auto& [value, id] : candidates_) {
    value = std::exp((value - max_logit) / params_.temperature);
    total += value;
  }
  for (auto& candidate : candidates_) candidate.first = static_cast<float>(candidate.first / total);

  // min-p: drop tokens less likely than min_p times the most likely one.
  if (params_.min_p > 0.0f) {
    const float threshold = params_.min_p * candidates_.front().first;
    size_t n = 1;
    while (n < candidates_.size() && candidates_[n].first >= threshold) ++n;
    candidates_.resize(n);
  }
  // top-p: the smallest prefix whose mass reaches top_p.
  if (params_.top_p < 1.0f) {
    double mass = 0.0;
    size_t n = 0;
    while (n < candidates_.size()) {
      mass += candidates_[n++].first;
      if (mass >= params_.top_p) break;
    }
    candidates_.resize(n);
  }
  double remaining = 0.0;
  for (const auto& candidate : candidates_) remaining += candidate.first;
  std::uniform_real_distribution<double> uniform(0.0, remaining);
  double r = uniform(rng_);
  for (const auto& [p, id] : candidates_) {
    r -= p;
    if (r <= 0.0) return id;
  }
  return candidates_.back().second;
}

}  // namespace morphserve
