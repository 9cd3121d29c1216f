// RoPE against a plain float64 reference in both pair layouts.
#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "kernels/rope.h"

namespace morphserve {
namespace {

std::vector<double> reference(const std::vector<float>& x, int64_t n_tokens, int n_heads,
                              const std::vector<int32_t>& positions, const RopeParams& p) {
  const int rope_dims = p.rope_dims == 0 ? p.head_dim : p.rope_dims;
  std::vector<double> out(x.begin(), x.end());
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int h = 0; h < n_heads; ++h) {
      double* head = out.data() + (t * n_heads + h) * p.head_dim;
      for (int i = 0; i < rope_dims / 2; ++i) {
        const double theta = positions[t] * double{p.freq_scale} * std::pow(double{p.freq_base}, -2.0 * i / rope_dims);
        const int a = p.neox ? i : 2 * i;
        const int b = p.neox ? i + rope_dims / 2 : 2 * i + 1;
        const double x0 = head[a], x1 = head[b];
        head[a] = x0 * std::cos(theta) - x1 * std::sin(theta);
        head[b] = x0 * std::sin(theta) + x1 * std::cos(theta);
      }
    }
  }
  return out;
}

struct RopeCase {
  int head_dim;
  int rope_dims;
  float freq_base;
  float freq_scale;
  bool neox;
};

TEST(Rope, MatchesFloat64Reference) {
  const std::vector<RopeCase> cases = {
      {8, 8, 10000.0f, 1.0f, false},    {8, 8, 10000.0f, 1.0f, true},    {64, 64, 10000.0f, 1.0f, false},
      {128, 128, 500000.0f, 1.0f, true}, {128, 64, 10000.0f, 1.0f, false}, {128, 32, 10000.0f, 1.0f, true},
      {64, 64, 10000.0f, 0.25f, false},  {64, 16, 1e6f, 0.5f, true},     {6, 0, 10000.0f, 1.0f, false},
  };
  const int n_heads = 3;
  const std::vector<int32_t> positions = {0, 1, 7, 100, 4095, 32768, 123457};
  const auto n_tokens = static_cast<int64_t>(positions.size());
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-3.0f, 3.0f);
  for (const RopeCase& c : cases) {
    const RopeParams params{c.head_dim, c.rope_dims, c.freq_base, c.freq_scale, c.neox};
    std::vector<float> x(static_cast<size_t>(n_tokens * n_heads * c.head_dim));
    for (float& v : x) v = dist(rng);
    const auto ref = reference(x, n_tokens, n_heads, positions, params);
    rope(x.data(), n_tokens, n_heads, positions.data(), params);
    for (size_t i = 0; i < x.size(); ++i) {
      // The result is the float rounding of the float64 rotation: within half an ulp plus slack.
      ASSERT_NEAR(x[i], ref[i], 1e-6 * std::abs(ref[i]) + 1e-7)
          << "head_dim=" << c.head_dim << " rope_dims=" << c.rope_dims << " neox=" << c.neox << " i=" << i;
    }
  }
}

TEST(Rope, PassesThroughUnrotatedDimsAndPositionZero) {
  const RopeParams params{16, 8, 10000.0f, 1.0f, false};
  std::vector<float> x(2 * 16);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) * 0.37f - 2.0f;
  const std::vector<float> before = x;
  const std::vector<int32_t> positions = {0, 9};
  rope(x.data(), 2, 1, positions.data(), params);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(x[i], before[i]) << "position 0 is the identity";
  for (int i = 8; i < 16; ++i) EXPECT_EQ(x[16 + i], before[16 + i]) << "dims past rope_dims pass through";
  EXPECT_NE(x[16], before[16]);
}

TEST(Rope, RejectsBadParameters) {
  float x[8] = {};
  const int32_t pos = 0;
  EXPECT_THROW(rope(x, 1, 1, &pos, RopeParams{0, 0, 10000.0f, 1.0f, false}), InvalidArgument);
  EXPECT_THROW(rope(x, 1, 1, &pos, RopeParams{8, 7, 10000.0f, 1.0f, false}), InvalidArgument);
  EXPECT_THROW(rope(x, 1, 1, &pos, RopeParams{8, 10, 10000.0f, 1.0f, false}), InvalidArgument);
  EXPECT_THROW(rope(x, 1, 1, &pos, RopeParams{8, 8, 0.0f, 1.0f, false}), InvalidArgument);
  EXPECT_THROW(rope(x, 1, 0, &pos, RopeParams{8, 8, 10000.0f, 1.0f, false}), InvalidArgument);
}

}  // namespace
}  // namespace morphserve
