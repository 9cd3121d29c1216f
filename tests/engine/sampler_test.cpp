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

}  // namespace
}  // namespace morphserve
