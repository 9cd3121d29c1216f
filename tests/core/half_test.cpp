// core/half.h's scalar conversions against the F16C instructions (the reference llama.cpp's x86
// build uses) and an independent bf16 rounding, over every half and millions of floats.
#include "core/half.h"

#include <gtest/gtest.h>
#include <cpuid.h>
#include <immintrin.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace morphserve {
namespace {

__attribute__((target("f16c"))) uint16_t f16c_from_float(float f) {
  return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
__attribute__((target("f16c"))) float f16c_to_float(uint16_t h) { return _cvtsh_ss(h); }

bool cpu_has_f16c() {
  // CPUID leaf 1, ECX bit 29: clang's __builtin_cpu_supports has no "f16c".
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
}

bool is_nan_half(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x03ffu) != 0; }

// F16C quiets signalling NaNs and keeps payload bits; half.h only promises NaN stays NaN with the
// same sign. Everything else must be bit-identical.
void expect_same_half(float f, uint16_t got, uint16_t want) {
  if (std::isnan(f)) {
    ASSERT_TRUE(is_nan_half(got)) << std::hex << std::bit_cast<uint32_t>(f) << " -> " << got;
    ASSERT_EQ(got & 0x8000u, want & 0x8000u) << std::hex << std::bit_cast<uint32_t>(f);
  } else {
    ASSERT_EQ(got, want) << "float bits 0x" << std::hex << std::bit_cast<uint32_t>(f) << " (" << f << ")";
  }
}

TEST(Half, EveryHalfConvertsToFloatLikeF16C) {
  if (!cpu_has_f16c()) GTEST_SKIP() << "CPU lacks F16C: nothing to compare against";
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const float got = fp16_to_fp32(static_cast<uint16_t>(h));
    const float want = f16c_to_float(static_cast<uint16_t>(h));
    if (is_nan_half(static_cast<uint16_t>(h))) {
      ASSERT_TRUE(std::isnan(got)) << std::hex << h;
      ASSERT_EQ(std::signbit(got), std::signbit(want)) << std::hex << h;
    } else {
      ASSERT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(want)) << "half 0x" << std::hex << h;
    }
  }
}

TEST(Half, EveryHalfRoundTripsThroughFloat) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    if (is_nan_half(static_cast<uint16_t>(h))) continue;
    ASSERT_EQ(fp32_to_fp16(fp16_to_fp32(static_cast<uint16_t>(h))), h) << std::hex << h;
  }
}

std::vector<float> edge_floats() {
  std::vector<float> v;
  const float inf = std::numeric_limits<float>::infinity();
  for (float f : {0.0f, -0.0f, inf, -inf, std::numeric_limits<float>::quiet_NaN(),
                  std::numeric_limits<float>::signaling_NaN(), std::numeric_limits<float>::min(),
                  std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::max(), 65504.0f, 65519.0f,
                  65519.99f, 65520.0f, 65536.0f, 6.1035156e-05f, 5.9604645e-08f, 2.9802322e-08f, 2.9802326e-08f,
                  1.0f, 1.0009766f, 1.00048828125f, 1.00146484375f, 0.33333334f}) {
    v.push_back(f);
    v.push_back(-f);
  }
  // Every tie and near-tie around each half: half of a half-ulp above/below, exactly on it.
  for (uint32_t h = 0; h < 0x7c00; h += 7) {
    const float lo = fp16_to_fp32(static_cast<uint16_t>(h));
    const float hi = fp16_to_fp32(static_cast<uint16_t>(h + 1));
    const float mid = lo + (hi - lo) / 2;  // exact in fp32
    for (float f : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, inf)}) {
      v.push_back(f);
      v.push_back(-f);
    }
  }
  return v;
}

TEST(Half, FloatsRoundToHalfLikeF16C) {
  if (!cpu_has_f16c()) GTEST_SKIP() << "CPU lacks F16C: nothing to compare against";
  for (float f : edge_floats()) expect_same_half(f, fp32_to_fp16(f), f16c_from_float(f));
  std::mt19937 rng(1234);
  // Random bit patterns cover every exponent, subnormals, infinities and NaNs.
  for (int i = 0; i < 3'000'000; ++i) {
    const float f = std::bit_cast<float>(static_cast<uint32_t>(rng()));
    expect_same_half(f, fp32_to_fp16(f), f16c_from_float(f));
  }
  // And values in the range weights live in.
  std::uniform_real_distribution<float> dist(-70000.0f, 70000.0f);
  for (int i = 0; i < 1'000'000; ++i) {
    const float f = dist(rng) * std::pow(2.0f, static_cast<float>(static_cast<int>(rng() % 40) - 30));
    expect_same_half(f, fp32_to_fp16(f), f16c_from_float(f));
  }
}

// An independent bf16 reference: pick the nearer of the two neighbouring bf16 values in double,
// ties to the even one.
uint16_t bf16_reference(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if (std::isnan(f)) return static_cast<uint16_t>((x >> 16) | 0x40u);
  const uint16_t down = static_cast<uint16_t>(x >> 16);
  if ((x & 0xffffu) == 0) return down;
  const uint16_t up = static_cast<uint16_t>(down + 1);
  const double d_down = std::fabs(static_cast<double>(bf16_to_fp32(down)) - f);
  const double d_up = std::isinf(bf16_to_fp32(up)) ? std::numeric_limits<double>::infinity()
                                                     : std::fabs(static_cast<double>(bf16_to_fp32(up)) - f);
  if ((x & 0xffffu) == 0x8000u) return (down & 1u) ? up : down;  // the exact tie
  if (std::isinf(bf16_to_fp32(up)) && (x & 0xffffu) > 0x8000u) return up;  // rounds to infinity
  return d_up < d_down ? up : down;
}

TEST(Half, Bf16RoundsToNearestEven) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const float f = bf16_to_fp32(static_cast<uint16_t>(h));
    ASSERT_EQ(std::bit_cast<uint32_t>(f), h << 16);
    if (!std::isnan(f)) {
      ASSERT_EQ(fp32_to_bf16(f), h) << std::hex << h;
    }
  }
  std::mt19937 rng(99);
  for (int i = 0; i < 3'000'000; ++i) {
    const float f = std::bit_cast<float>(static_cast<uint32_t>(rng()));
    const uint16_t got = fp32_to_bf16(f);
    if (std::isnan(f)) {
      ASSERT_TRUE(std::isnan(bf16_to_fp32(got)));
      continue;
    }
    ASSERT_EQ(got, bf16_reference(f)) << std::hex << std::bit_cast<uint32_t>(f);
  }
  EXPECT_EQ(fp32_to_bf16(1.00390625f), 0x3f80);           // tie, even below
  EXPECT_EQ(fp32_to_bf16(1.01171875f), 0x3f82);           // tie, even above
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);  // overflows to inf
}

}  // namespace
}  // namespace morphserve
