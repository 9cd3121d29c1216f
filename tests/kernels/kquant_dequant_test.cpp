// The K-quant formats (Q4_K, Q5_K, Q6_K): type facts, dequantization of hand-built super-blocks
// whose values follow from the documented layout (core/dtype.h), and the reference quantizers'
// round trip staying within each format's expected error.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/half.h"
#include "kernels/convert.h"

namespace morphserve {
namespace {

TEST(KQuantTypes, FactsMatchLlamaCpp) {
  EXPECT_EQ(static_cast<uint32_t>(DType::Q4_K), 12u);
  EXPECT_EQ(static_cast<uint32_t>(DType::Q5_K), 13u);
  EXPECT_EQ(static_cast<uint32_t>(DType::Q6_K), 14u);
  for (DType t : {DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
    EXPECT_TRUE(is_known_dtype(static_cast<uint32_t>(t)));
    EXPECT_TRUE(dtype_is_quantized(t));
    EXPECT_TRUE(dtype_is_kquant(t));
    EXPECT_EQ(dtype_block_elements(t), 256);
    EXPECT_EQ(parse_dtype(dtype_name(t)), t);
  }
  EXPECT_FALSE(dtype_is_kquant(DType::Q4_0));
  EXPECT_EQ(dtype_block_bytes(DType::Q4_K), 144u);
  EXPECT_EQ(dtype_block_bytes(DType::Q5_K), 176u);
  EXPECT_EQ(dtype_block_bytes(DType::Q6_K), 210u);
  EXPECT_EQ(dtype_name(DType::Q4_K), "q4_K");
  EXPECT_EQ(dtype_name(DType::Q5_K), "q5_K");
  EXPECT_EQ(dtype_name(DType::Q6_K), "q6_K");
  EXPECT_EQ(parse_dtype("Q4_K"), DType::Q4_K);
  EXPECT_EQ(parse_dtype("q6_k"), DType::Q6_K);
  EXPECT_EQ(dtype_row_bytes(DType::Q6_K, 512), 420u);
  EXPECT_THROW(dtype_row_bytes(DType::Q4_K, 288), InvalidArgument);
  // The Q8_0 / Q4_0 block is unchanged.
  EXPECT_EQ(dtype_block_elements(DType::Q4_0), kQuantBlock);
}

TEST(KQuantTypes, RowsMustBeWholeSuperBlocks) {
  std::vector<float> src(288, 1.0f), dst(288);
  std::vector<std::byte> bytes(1024);
  for (DType t : {DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
    SCOPED_TRACE(std::string(dtype_name(t)));
    try {
      convert_row_from_f32(t, src.data(), bytes.data(), 288);
      FAIL() << "a 288-element row was accepted";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("multiple of 256 elements, got 288"), std::string::npos) << e.what();
    }
    EXPECT_THROW(dequantize_row(t, bytes.data(), dst.data(), 32), InvalidArgument);
  }
}

// Eight 6-bit scales and mins packed as documented: sub-blocks 0..3 in the low 6 bits of bytes 0..3
// (scales) and 4..7 (mins); 4..7 with their low nibbles in bytes 8..11 and top 2 bits in the top
// bits of bytes 0..3 (scales) and 4..7 (mins).
void pack_scales_mins(const int (&sc)[8], const int (&m)[8], uint8_t* out) {
  for (int j = 0; j < 4; ++j) {
    out[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    out[j + 4] = static_cast<uint8_t>(m[j] | ((m[j + 4] >> 4) << 6));
    out[j + 8] = static_cast<uint8_t>((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
  }
}

constexpr int kScales[8] = {1, 2, 3, 4, 17, 33, 50, 63};  // 4..7 use both high bits
constexpr int kMins[8] = {0, 5, 10, 15, 16, 31, 47, 63};

TEST(KQuantDequant, Q4KHandBuiltBlock) {
  BlockQ4_K b{};
  b.d = fp32_to_fp16(0.5f);
  b.dmin = fp32_to_fp16(0.25f);
  pack_scales_mins(kScales, kMins, b.scales);
  // Weight k = 64c + 32h + l: byte 32c + l, low nibble for h = 0.
  auto level = [](int k) { return (k * 7 + k / 32) % 16; };
  for (int k = 0; k < 256; ++k) {
    const int c = k / 64, h = (k / 32) % 2, l = k % 32;
    b.qs[32 * c + l] |= static_cast<uint8_t>(level(k) << (4 * h));
  }
  float y[256];
  dequantize_row(DType::Q4_K, &b, y, 256);
  for (int k = 0; k < 256; ++k) {
    const int j = k / 32;
    ASSERT_EQ(y[k], 0.5f * kScales[j] * level(k) - 0.25f * kMins[j]) << "weight " << k;
  }
}

TEST(KQuantDequant, Q5KHandBuiltBlock) {
  BlockQ5_K b{};
  b.d = fp32_to_fp16(0.125f);
  b.dmin = fp32_to_fp16(1.0f);
  pack_scales_mins(kScales, kMins, b.scales);
  auto level = [](int k) { return (k * 13 + 5) % 32; };
  for (int k = 0; k < 256; ++k) {
    const int c = k / 64, h = (k / 32) % 2, l = k % 32, j = k / 32;
    b.qs[32 * c + l] |= static_cast<uint8_t>((level(k) & 15) << (4 * h));
    if (level(k) & 16) b.qh[l] |= static_cast<uint8_t>(1 << j);  // fifth bit: bit j of qh[l]
  }
  float y[256];
  dequantize_row(DType::Q5_K, &b, y, 256);
  for (int k = 0; k < 256; ++k) {
    const int j = k / 32;
    ASSERT_EQ(y[k], 0.125f * kScales[j] * level(k) - 1.0f * kMins[j]) << "weight " << k;
  }
}

TEST(KQuantDequant, Q6KHandBuiltBlock) {
  BlockQ6_K b{};
  b.d = fp32_to_fp16(0.25f);
  for (int s = 0; s < 16; ++s) b.scales[s] = static_cast<int8_t>(s * 13 - 128);  // -128 .. 67
  auto level = [](int k) { return (k * 5 + k / 64) % 64; };
  for (int k = 0; k < 256; ++k) {
    // Half h, quarter q of it, position l: low 4 bits in ql[64h + 32(q%2) + l] (high nibble for
    // q >= 2), top 2 bits in bits 2q..2q+1 of qh[32h + l].
    const int h = k / 128, q = (k % 128) / 32, l = k % 32;
    b.ql[64 * h + 32 * (q % 2) + l] |= static_cast<uint8_t>((level(k) & 15) << (4 * (q / 2)));
    b.qh[32 * h + l] |= static_cast<uint8_t>((level(k) >> 4) << (2 * q));
  }
  float y[256];
  dequantize_row(DType::Q6_K, &b, y, 256);
  for (int k = 0; k < 256; ++k) {
    ASSERT_EQ(y[k], 0.25f * b.scales[k / 16] * (level(k) - 32)) << "weight " << k;
  }
}

struct RoundTrip {
  double rel_rms;  // RMS error / RMS value
  double max_abs;  // largest |error|
};

RoundTrip round_trip(DType type, const std::vector<float>& x) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<std::byte> q(dtype_row_bytes(type, n));
  std::vector<float> y(x.size());
  convert_row_from_f32(type, x.data(), q.data(), n);
  dequantize_row(type, q.data(), y.data(), n);
  double err2 = 0, val2 = 0, max_abs = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double e = static_cast<double>(y[i]) - x[i];
    err2 += e * e;
    val2 += static_cast<double>(x[i]) * x[i];
    max_abs = std::max(max_abs, std::fabs(e));
  }
  return {std::sqrt(err2 / std::max(val2, 1e-300)), max_abs};
}

// Uniform data in [-1, 1]: the levels span a sub-block's range, so the RMS error is about
// range/levels/√12 (Q4_K ≈ 2/15/√12 ≈ 0.038 of ±1, i.e. 6.7% of the RMS 0.577; Q5_K half of it;
// Q6_K, symmetric with 64 levels, ≈ 1.6%), and no weight is off by more than about one step.
TEST(KQuantRoundTrip, UniformDataWithinEachFormatsError) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> x(256 * 64);
  for (auto& v : x) v = dist(rng);
  const RoundTrip q4 = round_trip(DType::Q4_K, x);
  const RoundTrip q5 = round_trip(DType::Q5_K, x);
  const RoundTrip q6 = round_trip(DType::Q6_K, x);
  EXPECT_LT(q4.rel_rms, 0.075);
  EXPECT_GT(q4.rel_rms, 0.04);  // a 4-bit format cannot do much better: the quantizer really ran
  EXPECT_LT(q5.rel_rms, 0.038);
  EXPECT_LT(q6.rel_rms, 0.018);
  EXPECT_LT(q5.rel_rms, q4.rel_rms * 0.6);
  EXPECT_LT(q6.rel_rms, q5.rel_rms * 0.6);
  EXPECT_LT(q4.max_abs, 2.0 / 15 * 1.2);
  EXPECT_LT(q5.max_abs, 2.0 / 31 * 1.2);
  EXPECT_LT(q6.max_abs, 2.0 / 63 * 1.5);
}

// Gaussian weights with an outlier per super-block, the shape real weight matrices have.
TEST(KQuantRoundTrip, GaussianDataWithOutliers) {
  std::mt19937 rng(8);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  std::vector<float> x(256 * 32);
  for (auto& v : x) v = dist(rng);
  for (size_t i = 0; i < x.size(); i += 256) x[i + 37] = 0.3f;
  EXPECT_LT(round_trip(DType::Q4_K, x).rel_rms, 0.12);
  EXPECT_LT(round_trip(DType::Q5_K, x).rel_rms, 0.06);
  EXPECT_LT(round_trip(DType::Q6_K, x).rel_rms, 0.03);
}

TEST(KQuantRoundTrip, ZeroAndConstantRows) {
  for (DType t : {DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
    SCOPED_TRACE(std::string(dtype_name(t)));
    std::vector<float> zero(512, 0.0f);
    std::vector<std::byte> q(dtype_row_bytes(t, 512));
    std::vector<float> y(512, 1.0f);
    convert_row_from_f32(t, zero.data(), q.data(), 512);
    dequantize_row(t, q.data(), y.data(), 512);
    for (float v : y) ASSERT_EQ(v, 0.0f);
    // A constant row (every sub-block's min equals its max) and one constant negative half.
    std::vector<float> c(512, 0.75f);
    for (int i = 256; i < 512; ++i) c[static_cast<size_t>(i)] = -0.5f;
    convert_row_from_f32(t, c.data(), q.data(), 512);
    dequantize_row(t, q.data(), y.data(), 512);
    for (size_t i = 0; i < c.size(); ++i) ASSERT_NEAR(y[i], c[i], 0.01) << i;
  }
}

}  // namespace
}  // namespace morphserve
