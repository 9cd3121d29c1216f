// Softmax: scalar against a double reference (large magnitudes, -inf entries), SIMD against scalar.
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "kernels/random_inputs.h"
#include "kernels/softmax.h"

namespace morphserve {
namespace {

using testing::kKernelLengths;

constexpr float kInf = std::numeric_limits<float>::infinity();

// Random logits with a few masked (-inf) entries and, optionally, +-80 magnitudes.
std::vector<float> logits(int64_t n, uint32_t seed, bool large) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(large ? -80.0f : -8.0f, large ? 80.0f : 8.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  if (n >= 3) {
    v[1] = -kInf;
    v[static_cast<size_t>(n - 1)] = -kInf;
  }
  if (large && n >= 4) {
    v[0] = 80.0f;
    v[2] = -80.0f;
  }
  return v;
}

std::vector<double> reference(const std::vector<float>& x) {
  double max = -INFINITY;
  for (float v : x) max = std::max(max, double{v});
  std::vector<double> out(x.size());
  double sum = 0.0;
  for (size_t i = 0; i < x.size(); ++i) sum += out[i] = std::exp(double{x[i]} - max);
  for (double& v : out) v /= sum;
  return out;
}

TEST(SoftmaxScalar, MatchesDoubleReference) {
  for (const int64_t n : kKernelLengths) {
    for (const bool large : {false, true}) {
      auto x = logits(n, 1 + static_cast<uint32_t>(n), large);
      const auto ref = reference(x);
      softmax_with_isa(Isa::Scalar, x.data(), n);
      double total = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_NEAR(x[i], ref[i], 2e-6 * ref[i] + 1e-30) << "n=" << n << " large=" << large << " i=" << i;
        total += x[i];
      }
      EXPECT_NEAR(total, 1.0, 1e-5);
    }
  }
}

TEST(SoftmaxScalar, MaskedEntriesAreExactlyZero) {
  std::vector<float> x = {1.0f, -kInf, 2.0f, -kInf};
  softmax_with_isa(Isa::Scalar, x.data(), 4);
  EXPECT_EQ(x[1], 0.0f);
  EXPECT_EQ(x[3], 0.0f);
  EXPECT_NEAR(x[0] + x[2], 1.0f, 1e-7);
}

TEST(Softmax, RejectsNegativeSize) {
  float x = 0.0f;
  EXPECT_THROW(softmax(&x, -1), InvalidArgument);
}

class SoftmaxIsa : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!cpu_supports(GetParam())) GTEST_SKIP() << "this CPU lacks " << isa_name(GetParam());
  }
};

TEST_P(SoftmaxIsa, MatchesScalar) {
  for (const int64_t n : kKernelLengths) {
    for (const bool large : {false, true}) {
      auto expected = logits(n, 10 + static_cast<uint32_t>(n), large);
      std::vector<float> actual = expected;
      actual.resize(static_cast<size_t>(n) + 8, 5.0f);
      softmax_with_isa(Isa::Scalar, expected.data(), n);
      softmax_with_isa(GetParam(), actual.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_NEAR(actual[i], expected[i], 4e-6 * expected[i] + 1e-30) << "n=" << n << " large=" << large;
      }
      for (int64_t i = n; i < n + 8; ++i) ASSERT_EQ(actual[i], 5.0f) << "wrote past the end, n=" << n;
    }
  }
}

TEST_P(SoftmaxIsa, DegenerateRowsAgreeWithScalar) {
  // One entry: probability 1. All -inf, or a +inf entry: no distribution, NaN on every level.
  float one = -3.0f;
  softmax_with_isa(GetParam(), &one, 1);
  EXPECT_EQ(one, 1.0f);
  for (const float fill : {-kInf, kInf}) {
    std::vector<float> x(19, -kInf);
    x[5] = fill;
    softmax_with_isa(GetParam(), x.data(), 19);
    for (float v : x) EXPECT_TRUE(std::isnan(v)) << "fill=" << fill;
  }
  std::vector<float> with_nan = {1.0f, std::numeric_limits<float>::quiet_NaN(), 2.0f};
  softmax_with_isa(GetParam(), with_nan.data(), 3);
  for (float v : with_nan) EXPECT_TRUE(std::isnan(v));
  softmax_with_isa(GetParam(), nullptr, 0);  // empty row: nothing to do
}

INSTANTIATE_TEST_SUITE_P(Levels, SoftmaxIsa, ::testing::Values(Isa::Scalar, Isa::Avx2, Isa::Avx512),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

}  // namespace
}  // namespace morphserve
