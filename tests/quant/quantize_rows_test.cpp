// llama.cpp's reference quantizers on hand-computed blocks (round-half cases, the 8.5 truncation,
// the clamp, zero and single-negative-max blocks) and error bounds of quantize → dequantize.
#include "kernels/quantize_rows.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <random>
#include <vector>

#include "core/half.h"

namespace morphserve {
namespace {

constexpr uint16_t kHalfOne = 0x3c00;

TEST(QuantizeQ8_0, RoundsHalfAwayFromZero) {
  // amax = 127 makes d = 1 exactly, so q = roundf(x): halves go away from zero.
  std::array<float, 32> x{};
  x[0] = 127.0f;
  x[1] = 2.5f;
  x[2] = -2.5f;
  x[3] = 0.5f;
  x[4] = -0.5f;
  x[5] = 1.49f;
  x[6] = -126.5f;
  x[7] = 3.5f;
  BlockQ8_0 b;
  quantize_row_q8_0_ref(x.data(), &b, 32);
  EXPECT_EQ(b.d, kHalfOne);
  const int8_t want[8] = {127, 3, -3, 1, -1, 1, -127, 4};
  for (int j = 0; j < 8; ++j) EXPECT_EQ(b.qs[j], want[j]) << j;
  for (int j = 8; j < 32; ++j) EXPECT_EQ(b.qs[j], 0) << j;
}

TEST(QuantizeQ8_0, AllZeroBlockHasZeroScale) {
  std::array<float, 64> x{};
  BlockQ8_0 b[2];
  quantize_row_q8_0_ref(x.data(), b, 64);
  for (const auto& block : b) {
    EXPECT_EQ(block.d, 0);
    for (int8_t q : block.qs) EXPECT_EQ(q, 0);
  }
}

TEST(QuantizeQ8_0, ScaleIsAmaxOver127RoundedToHalf) {
  std::array<float, 32> x{};
  x[3] = -0.3f;  // negative amax: d stays positive
  x[4] = 0.1f;
  BlockQ8_0 b;
  quantize_row_q8_0_ref(x.data(), &b, 32);
  EXPECT_EQ(b.d, fp32_to_fp16(0.3f / 127.0f));
  EXPECT_EQ(b.qs[3], -127);
  EXPECT_EQ(b.qs[4], static_cast<int8_t>(std::roundf(0.1f * (1.0f / (0.3f / 127.0f)))));  // 42
}

TEST(QuantizeQ4_0, TruncatesAfterAddingEightAndAHalf) {
  // A single negative max of -8 gives d = -8/-8 = 1, id = 1: q = min(15, trunc(x + 8.5)).
  std::array<float, 32> x{};
  x[0] = -8.0f;  // 0.5  -> 0
  x[1] = -0.5f;  // 8.0  -> 8
  x[2] = -0.6f;  // 7.9  -> 7
  x[3] = 0.49f;  // 8.99 -> 8
  x[4] = 0.5f;   // 9.0  -> 9
  x[5] = 7.5f;   // 16.0 -> 16, clamped to 15
  x[6] = -7.6f;  // 0.9  -> 0
  x[16] = 6.5f;  // 15.0 -> 15 (high nibble of byte 0)
  x[17] = -1.0f; // 7.5  -> 7  (high nibble of byte 1)
  x[31] = 1.0f;  // 9.5  -> 9  (high nibble of byte 15)
  BlockQ4_0 b;
  quantize_row_q4_0_ref(x.data(), &b, 32);
  EXPECT_EQ(b.d, kHalfOne);
  const int lo[16] = {0, 8, 7, 8, 9, 15, 0, 8, 8, 8, 8, 8, 8, 8, 8, 8};
  int hi[16];
  for (int& h : hi) h = 8;
  hi[0] = 15;
  hi[1] = 7;
  hi[15] = 9;
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(b.qs[j] & 0x0f, lo[j]) << "low nibble " << j;
    EXPECT_EQ(b.qs[j] >> 4, hi[j]) << "high nibble " << j;
  }
}

TEST(QuantizeQ4_0, MaxIsTheSignedValueOfLargestMagnitudeFirstWins) {
  std::array<float, 32> x{};
  x[2] = 3.0f;
  x[9] = -3.0f;  // same magnitude later: the first (+3) stays the max
  BlockQ4_0 b;
  quantize_row_q4_0_ref(x.data(), &b, 32);
  EXPECT_EQ(b.d, fp32_to_fp16(3.0f / -8.0f));
  // +3 * (1/-0.375) = -8 -> 0.5 -> 0; -3 -> 16.5 -> 15 (clamp); zeros -> 8.
  EXPECT_EQ(b.qs[2] & 0x0f, 0);
  EXPECT_EQ(b.qs[9] & 0x0f, 15);
  EXPECT_EQ(b.qs[0], 0x88);
  std::array<float, 32> y = x;
  y[2] = 2.0f;  // now -3 is the largest magnitude: d positive
  quantize_row_q4_0_ref(y.data(), &b, 32);
  EXPECT_EQ(b.d, fp32_to_fp16(-3.0f / -8.0f));
  EXPECT_EQ(b.qs[9] & 0x0f, 0);
}

TEST(QuantizeQ4_0, AllZeroBlockIsAllEights) {
  std::array<float, 32> x{};
  BlockQ4_0 b;
  quantize_row_q4_0_ref(x.data(), &b, 32);
  EXPECT_EQ(b.d, 0x8000);  // 0 / -8 = -0.0, bit for bit what llama.cpp stores
  for (uint8_t q : b.qs) EXPECT_EQ(q, 0x88);
  std::array<float, 32> back;
  dequantize_row_q4_0(&b, back.data(), 32);
  for (float v : back) EXPECT_EQ(v, 0.0f);
}

TEST(Dequantize, MatchesTheLayout) {
  BlockQ8_0 q8;
  q8.d = fp32_to_fp16(0.5f);
  for (int j = 0; j < 32; ++j) q8.qs[j] = static_cast<int8_t>(j - 16);
  std::array<float, 32> y;
  dequantize_row_q8_0(&q8, y.data(), 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], 0.5f * static_cast<float>(j - 16));

  BlockQ4_0 q4;
  q4.d = fp32_to_fp16(-2.0f);
  for (int j = 0; j < 16; ++j) q4.qs[j] = static_cast<uint8_t>(j | (15 - j) << 4);
  dequantize_row_q4_0(&q4, y.data(), 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], -2.0f * static_cast<float>(j - 8));
    EXPECT_EQ(y[j + 16], -2.0f * static_cast<float>(15 - j - 8));
  }
}

// |x − dequant(quant(x))|: Q8_0 rounds to the nearest step of d; Q4_0 too, except the one value
// pushed to +8 steps, which the clamp to 15 moves a whole step. Plus the fp16 rounding of d.
TEST(QuantizeRoundTrip, ErrorWithinHalfAStep) {
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const int64_t n = 32 * 500;
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = dist(rng) * (rng() % 7 == 0 ? 100.0f : 1.0f);
  std::vector<BlockQ8_0> q8(static_cast<size_t>(n / 32));
  std::vector<BlockQ4_0> q4(static_cast<size_t>(n / 32));
  quantize_row_q8_0_ref(x.data(), q8.data(), n);
  quantize_row_q4_0_ref(x.data(), q4.data(), n);
  std::vector<float> y8(static_cast<size_t>(n)), y4(static_cast<size_t>(n));
  dequantize_row_q8_0(q8.data(), y8.data(), n);
  dequantize_row_q4_0(q4.data(), y4.data(), n);
  for (int64_t b = 0; b < n / 32; ++b) {
    const float d8 = fp16_to_fp32(q8[static_cast<size_t>(b)].d);
    const float d4 = std::fabs(fp16_to_fp32(q4[static_cast<size_t>(b)].d));
    for (int j = 0; j < 32; ++j) {
      const size_t i = static_cast<size_t>(b * 32 + j);
      // fp16(d) differs from d by ≤ 2^-11 relative, and |q| ≤ 127 (Q8) or 8 (Q4) steps.
      ASSERT_LE(std::fabs(x[i] - y8[i]), d8 * (0.5f + 127.0f / 2048.0f) * 1.0001f) << i;
      ASSERT_LE(std::fabs(x[i] - y4[i]), d4 * (1.0f + 8.0f / 2048.0f) * 1.0001f) << i;
      const bool clamped = (q4[static_cast<size_t>(b)].qs[j % 16] >> (j < 16 ? 0 : 4) & 0x0f) == 15 &&
                           std::fabs(x[i] - y4[i]) > d4 * 0.51f;
      if (!clamped) {
        ASSERT_LE(std::fabs(x[i] - y4[i]), d4 * (0.5f + 8.0f / 2048.0f) * 1.0001f) << i;
      }
    }
  }
}

}  // namespace
}  // namespace morphserve
