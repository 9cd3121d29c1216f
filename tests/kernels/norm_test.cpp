// RMSNorm: scalar against a double reference, each SIMD level against scalar.
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "kernels/norm.h"
#include "kernels/random_inputs.h"

namespace morphserve {
namespace {

using testing::kKernelLengths;
using testing::random_vector;

std::vector<double> reference(const std::vector<float>& x, const std::vector<float>& w, int64_t rows, int64_t n,
                              double eps) {
  std::vector<double> out(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += double{x[r * n + i]} * x[r * n + i];
    const double inv = 1.0 / std::sqrt(sum / static_cast<double>(n) + eps);
    for (int64_t i = 0; i < n; ++i) out[r * n + i] = x[r * n + i] * inv * w[i];
  }
  return out;
}

TEST(RmsNormScalar, MatchesDoubleReference) {
  for (const int64_t n : kKernelLengths) {
    for (const float eps : {1e-5f, 1e-6f}) {
      const int64_t rows = 3;
      const auto x = random_vector(rows * n, 1 + static_cast<uint32_t>(n));
      const auto w = random_vector(n, 2 + static_cast<uint32_t>(n), 0.5f, 1.5f);
      std::vector<float> out(x.size());
      rms_norm_with_isa(Isa::Scalar, x.data(), w.data(), out.data(), rows, n, eps);
      const auto ref = reference(x, w, rows, n, eps);
      for (size_t i = 0; i < out.size(); ++i) {
        ASSERT_NEAR(out[i], ref[i], 1e-6 * std::abs(ref[i]) + 1e-7) << "n=" << n << " i=" << i;
      }
    }
  }
}

TEST(RmsNormScalar, SmallRowIsDominatedByEps) {
  const std::vector<float> x = {1e-4f, -1e-4f, 2e-4f};
  const std::vector<float> w = {1.0f, 1.0f, 1.0f};
  std::vector<float> out(3);
  rms_norm_with_isa(Isa::Scalar, x.data(), w.data(), out.data(), 1, 3, 1e-5f);
  const auto ref = reference(x, w, 1, 3, 1e-5f);
  for (size_t i = 0; i < out.size(); ++i) EXPECT_NEAR(out[i], ref[i], 1e-6 * std::abs(ref[i]));
}

TEST(RmsNorm, RejectsBadArguments) {
  float x = 1.0f, w = 1.0f, out = 0.0f;
  EXPECT_THROW(rms_norm(&x, &w, &out, 1, 0, 1e-5f), InvalidArgument);
  EXPECT_THROW(rms_norm(&x, &w, &out, -1, 1, 1e-5f), InvalidArgument);
  EXPECT_THROW(rms_norm(&x, &w, &out, 1, 1, -1.0f), InvalidArgument);
}

class RmsNormIsa : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!cpu_supports(GetParam())) GTEST_SKIP() << "this CPU lacks " << isa_name(GetParam());
  }
};

TEST_P(RmsNormIsa, MatchesScalar) {
  for (const int64_t n : kKernelLengths) {
    const int64_t rows = 2;
    const auto x = random_vector(rows * n, 10 + static_cast<uint32_t>(n), -30.0f, 30.0f);
    const auto w = random_vector(n, 20 + static_cast<uint32_t>(n), -1.5f, 1.5f);
    std::vector<float> expected(x.size()), actual(x.size());
    rms_norm_with_isa(Isa::Scalar, x.data(), w.data(), expected.data(), rows, n, 1e-6f);
    rms_norm_with_isa(GetParam(), x.data(), w.data(), actual.data(), rows, n, 1e-6f);
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_NEAR(actual[i], expected[i], 2e-6 * std::abs(expected[i]) + 1e-7) << "n=" << n << " i=" << i;
    }
  }
}

TEST_P(RmsNormIsa, InPlace) {
  const int64_t n = 100;
  auto x = random_vector(n, 7);
  const auto w = random_vector(n, 8);
  std::vector<float> expected(n);
  rms_norm_with_isa(GetParam(), x.data(), w.data(), expected.data(), 1, n, 1e-5f);
  rms_norm_with_isa(GetParam(), x.data(), w.data(), x.data(), 1, n, 1e-5f);
  EXPECT_EQ(x, expected);
}

TEST_P(RmsNormIsa, DoesNotWritePastTheRow) {
  const int64_t n = 17;
  const auto x = random_vector(n, 9);
  const auto w = random_vector(n, 10);
  std::vector<float> out(n + 16, 123.0f);
  rms_norm_with_isa(GetParam(), x.data(), w.data(), out.data(), 1, n, 1e-5f);
  for (int64_t i = n; i < n + 16; ++i) EXPECT_EQ(out[i], 123.0f);
}

INSTANTIATE_TEST_SUITE_P(Levels, RmsNormIsa, ::testing::Values(Isa::Avx2, Isa::Avx512),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

}  // namespace
}  // namespace morphserve
