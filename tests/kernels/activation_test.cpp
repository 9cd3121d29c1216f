// SwiGLU (silu_mul) and the vector exp it is built on.
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/activation.h"
#include "kernels/elementwise_impl.h"
#include "kernels/random_inputs.h"

namespace morphserve {
namespace {

using testing::kKernelLengths;
using testing::random_vector;

double silu_mul_reference(double g, double u) { return g / (1.0 + std::exp(-g)) * u; }

TEST(SiluMulScalar, MatchesDoubleReferenceIncludingExtremes) {
  auto gate = random_vector(1000, 1, -12.0f, 12.0f);
  const std::vector<float> extremes = {-100.0f, 100.0f, -88.5f, 88.5f, -89.0f, 89.0f, -20.0f, 20.0f,
                                       0.0f,    -0.0f,  1e-30f, -1e-30f, 1e-3f, -1e-3f};
  gate.insert(gate.end(), extremes.begin(), extremes.end());
  const auto up = random_vector(static_cast<int64_t>(gate.size()), 2, -3.0f, 3.0f);
  std::vector<float> out(gate.size());
  silu_mul_with_isa(Isa::Scalar, gate.data(), up.data(), out.data(), static_cast<int64_t>(gate.size()));
  for (size_t i = 0; i < gate.size(); ++i) {
    const double ref = silu_mul_reference(gate[i], up[i]);
    // The absolute floor covers the subnormal range: silu(-100) ~ -3.7e-42 is built from
    // exp(-100) ~ 3.7e-44, a subnormal with a few significant bits.
    ASSERT_NEAR(out[i], ref, 1e-6 * std::abs(ref) + 1e-42) << "gate=" << gate[i] << " up=" << up[i];
  }
}

class SiluMulIsa : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!cpu_supports(GetParam())) GTEST_SKIP() << "this CPU lacks " << isa_name(GetParam());
  }
};

TEST_P(SiluMulIsa, MatchesScalar) {
  for (const int64_t n : kKernelLengths) {
    auto gate = random_vector(n, 10 + static_cast<uint32_t>(n), -15.0f, 15.0f);
    if (n >= 4) {  // the extremes, placed in the masked tail too
      gate[0] = -100.0f;
      gate[1] = 100.0f;
      gate[n - 1] = -95.0f;
      gate[n - 2] = 95.0f;
    }
    const auto up = random_vector(n, 20 + static_cast<uint32_t>(n), -3.0f, 3.0f);
    std::vector<float> expected(n), actual(n + 8, 7.0f);
    silu_mul_with_isa(Isa::Scalar, gate.data(), up.data(), expected.data(), n);
    silu_mul_with_isa(GetParam(), gate.data(), up.data(), actual.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_NEAR(actual[i], expected[i], 1e-6 * std::abs(expected[i]) + 1e-42) << "n=" << n << " gate=" << gate[i];
    }
    for (int64_t i = n; i < n + 8; ++i) ASSERT_EQ(actual[i], 7.0f) << "wrote past the end, n=" << n;
  }
}

TEST_P(SiluMulIsa, InPlaceOverGate) {
  auto gate = random_vector(100, 3, -5.0f, 5.0f);
  const auto up = random_vector(100, 4, -5.0f, 5.0f);
  std::vector<float> expected(100);
  silu_mul_with_isa(GetParam(), gate.data(), up.data(), expected.data(), 100);
  silu_mul_with_isa(GetParam(), gate.data(), up.data(), gate.data(), 100);
  EXPECT_EQ(gate, expected);
}

// Distance in units in the last place of the float nearest `ref`.
double ulp_error(float value, double ref) {
  const float nearest = static_cast<float>(ref);
  const double ulp = std::nextafter(nearest, std::numeric_limits<float>::infinity()) - double{nearest};
  return std::abs(double{value} - ref) / ulp;
}

void run_exp(Isa isa, const std::vector<float>& x, std::vector<float>& out) {
  out.resize(x.size());
  const auto n = static_cast<int64_t>(x.size());
  kernel_impl::isa_kernels(isa).exp_array(x.data(), out.data(), n);
}

TEST_P(SiluMulIsa, VectorExpWithinTwoUlpOverTheNormalRange) {
  // A dense grid between the bounds whose exp is a normal float, plus tiny magnitudes (where
  // exp(x) ~ 1 + x tests the rounding near 1) on a log scale.
  std::vector<float> x;
  const double lo = -87.33, hi = 88.72;
  const int grid = 1 << 21;
  for (int i = 0; i <= grid; ++i) x.push_back(static_cast<float>(lo + (hi - lo) * i / grid));
  for (int i = 0; i < 4096; ++i) {
    const float magnitude = static_cast<float>(std::pow(10.0, -30.0 + 30.0 * i / 4096));
    x.push_back(magnitude);
    x.push_back(-magnitude);
  }
  std::vector<float> out;
  run_exp(GetParam(), x, out);
  double worst = 0.0;
  float worst_x = 0.0f;
  for (size_t i = 0; i < x.size(); ++i) {
    const double err = ulp_error(out[i], std::exp(double{x[i]}));
    if (err > worst) {
      worst = err;
      worst_x = x[i];
    }
  }
  EXPECT_LE(worst, 2.0) << "worst at x=" << worst_x << " over " << x.size() << " points";
}

TEST_P(SiluMulIsa, VectorExpSpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> x = {-inf, inf, std::numeric_limits<float>::quiet_NaN(), 0.0f, -0.0f, 89.0f, 88.8f,
                                1000.0f, -104.0f, -1000.0f, -95.0f, -100.0f, -87.5f, 1.0f, -1.0f};
  std::vector<float> out;
  run_exp(GetParam(), x, out);
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_EQ(out[1], inf);
  EXPECT_TRUE(std::isnan(out[2]));
  EXPECT_EQ(out[3], 1.0f);
  EXPECT_EQ(out[4], 1.0f);
  EXPECT_EQ(out[5], inf);
  EXPECT_EQ(out[6], inf);
  EXPECT_EQ(out[7], inf);
  EXPECT_EQ(out[8], 0.0f);
  EXPECT_EQ(out[9], 0.0f);
  // Subnormal results: within a couple of the smallest subnormal steps.
  const double step = std::numeric_limits<float>::denorm_min();
  for (size_t i = 10; i < 13; ++i) EXPECT_NEAR(out[i], std::exp(double{x[i]}), 2 * step) << "x=" << x[i];
  EXPECT_LE(ulp_error(out[13], std::exp(1.0)), 1.0);
  EXPECT_LE(ulp_error(out[14], std::exp(-1.0)), 1.0);
}

INSTANTIATE_TEST_SUITE_P(Levels, SiluMulIsa, ::testing::Values(Isa::Avx2, Isa::Avx512),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

}  // namespace
}  // namespace morphserve
