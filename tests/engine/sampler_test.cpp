#include "engine/sampler.h"

#include <cmath>
#include <map>

#include <gtest/gtest.h>

#include "core/error.h"

namespace morphserve {
namespace {

TEST(Sampler, GreedyPicksTheLargestLogitLowestIndexOnTies) {
  Sampler sampler(SamplingParams{});
  const std::vector<float> logits = {0.1f, 3.0f, -1.0f, 3.0f};
  EXPECT_EQ(sampler.sample(logits), 1);
}

TEST(Sampler, SameSeedSameTokens) {
  const std::vector<float> logits = {1.0f, 1.2f, 0.8f, 1.1f, 0.9f};
  SamplingParams params{1.0f, 0, 1.0f, 0.0f, 42};
  Sampler a(params), b(params);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(a.sample(logits), b.sample(logits));
}

TEST(Sampler, TopKOneIsGreedy) {
  const std::vector<float> logits = {1.0f, 1.2f, 0.8f, 5.0f, 0.9f};
  Sampler sampler(SamplingParams{2.0f, 1, 1.0f, 0.0f, 7});
  for (int i = 0; i < 100; ++i) EXPECT_EQ(sampler.sample(logits), 3);
}

TEST(Sampler, TopPKeepsOnlyTheNucleus) {
  // probabilities at T=1: token 0 holds ~0.88 of the mass; top_p 0.5 keeps only it.
  const std::vector<float> logits = {4.0f, 1.0f, 1.0f, 0.0f};
  Sampler sampler(SamplingParams{1.0f, 0, 0.5f, 0.0f, 3});
  for (int i = 0; i < 100; ++i) EXPECT_EQ(sampler.sample(logits), 0);
}

TEST(Sampler, MinPDropsUnlikelyTokens) {
  const std::vector<float> logits = {2.0f, 2.0f, -5.0f, -5.0f};
  Sampler sampler(SamplingParams{1.0f, 0, 1.0f, 0.1f, 5});
  std::map<int32_t, int> counts;
  for (int i = 0; i < 2000; ++i) ++counts[sampler.sample(logits)];
  EXPECT_EQ(counts.count(2) + counts.count(3), 0u);
  EXPECT_GT(counts[0], 800);
  EXPECT_GT(counts[1], 800);
}

TEST(Sampler, FollowsTheDistribution) {
  const std::vector<float> logits = {0.0f, std::log(3.0f)};  // 1:3
  Sampler sampler(SamplingParams{1.0f, 0, 1.0f, 0.0f, 11});
  int ones = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) ones += sampler.sample(logits) == 1;
  EXPECT_NEAR(static_cast<double>(ones) / n, 0.75, 0.02);
}

TEST(SamplingParams, RejectsOutOfRangeValues) {
  EXPECT_THROW((SamplingParams{-1.0f, 0, 1.0f, 0.0f, {}}.validate()), InvalidArgument);
  EXPECT_THROW((SamplingParams{1.0f, -3, 1.0f, 0.0f, {}}.validate()), InvalidArgument);
  EXPECT_THROW((SamplingParams{1.0f, 0, 0.0f, 0.0f, {}}.validate()), InvalidArgument);
  EXPECT_THROW((SamplingParams{1.0f, 0, 1.5f, 0.0f, {}}.validate()), InvalidArgument);
  EXPECT_THROW((SamplingParams{1.0f, 0, 1.0f, 2.0f, {}}.validate()), InvalidArgument);
}

TEST(Sampler, NextAppliesPenaltiesFromWhatItGeneratedAndReportsUnpenalisedLogprobs) {
  // Greedy with a frequency penalty of 1.5: token 0 leads by 1.0, so once generated it drops below
  // token 1, which then leads until it has been generated as often.
  const std::vector<float> logits = {2.0f, 1.0f, -3.0f};
  Sampler sampler(SamplingParams{}, Penalties{0.0f, 1.5f}, 2);
  const GeneratedToken first = sampler.next(logits);
  EXPECT_EQ(first.token, 0);
  EXPECT_EQ(sampler.next(logits).token, 1);
  EXPECT_EQ(sampler.next(logits).token, 0);
  // Log-probabilities of the model's distribution, before any penalty.
  double sum = 0.0;
  for (float v : logits) sum += std::exp(static_cast<double>(v));
  EXPECT_NEAR(first.logprob, 2.0 - std::log(sum), 1e-5);
  ASSERT_EQ(first.top_logprobs.size(), 2u);
  EXPECT_EQ(first.top_logprobs[0].token, 0);
  EXPECT_EQ(first.top_logprobs[1].token, 1);
  EXPECT_NEAR(first.top_logprobs[1].logprob, 1.0 - std::log(sum), 1e-5);
}

TEST(Sampler, NextWithoutPenaltiesOrLogprobsIsSample) {
  const std::vector<float> logits = {1.0f, 1.2f, 0.8f, 1.1f, 0.9f};
  SamplingParams params{1.0f, 0, 1.0f, 0.0f, 42};
  Sampler a(params), b(params);
  for (int i = 0; i < 100; ++i) {
    const GeneratedToken g = a.next(logits);
    EXPECT_EQ(g.token, b.sample(logits));
    EXPECT_TRUE(g.top_logprobs.empty());
  }
}

TEST(Sampler, PresencePenaltyCountsATokenOnce) {
  const std::vector<float> logits = {2.0f, 1.0f};
  Sampler sampler(SamplingParams{}, Penalties{0.6f, 0.0f});
  EXPECT_EQ(sampler.next(logits).token, 0);
  EXPECT_EQ(sampler.next(logits).token, 0);  // 2.0 - 0.6 still leads, however often it came
  EXPECT_EQ(sampler.next(logits).token, 0);
}

}  // namespace
}  // namespace morphserve
