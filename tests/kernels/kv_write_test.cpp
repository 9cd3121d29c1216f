// kv_store_row: F32 copies, F16 rounds to nearest even on every level, bit-identical to half.h.
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/half.h"
#include "kernels/elementwise_impl.h"
#include "kernels/kv_write.h"

namespace morphserve {
namespace {

std::vector<float> test_values(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-70000.0f, 70000.0f);
  std::uniform_real_distribution<float> small(-1e-4f, 1e-4f);
  std::vector<float> v(static_cast<size_t>(n));
  for (size_t i = 0; i < v.size(); ++i) v[i] = i % 3 == 0 ? dist(rng) : i % 3 == 1 ? small(rng) : dist(rng) * 1e-3f;
  // Ties (1 + 2^-11 is halfway between two halves), subnormals, overflow, infinities, zeros.
  const float specials[] = {1.00048828125f, 1.00146484375f, 5.96e-8f, 2.98e-8f, 65504.0f, 65520.0f, 65519.0f,
                            std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                            0.0f, -0.0f, 6.1e-5f, -3e-6f};
  for (size_t i = 0; i < std::size(specials) && i < v.size(); ++i) v[v.size() - 1 - i] = specials[i];
  return v;
}

TEST(KvStore, F32IsACopy) {
  const auto src = test_values(67, 1);
  std::vector<std::byte> dst(src.size() * 4 + 4);
  kv_store_row(DType::F32, src.data(), dst.data() + 4, static_cast<int64_t>(src.size()));
  EXPECT_EQ(std::memcmp(dst.data() + 4, src.data(), src.size() * 4), 0);
}

TEST(KvStore, RejectsQuantizedTypes) {
  const float x = 1.0f;
  std::byte dst[64];
  EXPECT_THROW(kv_store_row(DType::Q8_0, &x, dst, 1), InvalidArgument);
  EXPECT_THROW(kv_store_row(DType::BF16, &x, dst, 1), InvalidArgument);
}

TEST(KvStore, EmptyRowWritesNothing) {
  kv_store_row(DType::F16, nullptr, nullptr, 0);
  kv_store_row(DType::F32, nullptr, nullptr, 0);
  const float x = 1.0f;
  std::byte dst[4];
  EXPECT_THROW(kv_store_row(DType::F16, &x, dst, -1), InvalidArgument);
}

class KvStoreIsa : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!cpu_supports(GetParam())) GTEST_SKIP() << "this CPU lacks " << isa_name(GetParam());
  }
  void store(const float* src, std::byte* dst, int64_t n) {
    kernel_impl::isa_kernels(GetParam()).store_f16(src, dst, n);
  }
};

TEST_P(KvStoreIsa, F16MatchesHalfConversionBitForBit) {
  for (const int64_t n : {1, 3, 17, 64, 100, 4099}) {
    const auto src = test_values(n, 2 + static_cast<uint32_t>(n));
    // Offset by one byte: the destination carries no alignment promise.
    std::vector<std::byte> dst(static_cast<size_t>(n) * 2 + 1 + 32, std::byte{0x5a});
    store(src.data(), dst.data() + 1, n);
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, dst.data() + 1 + 2 * i, 2);
      ASSERT_EQ(h, fp32_to_fp16(src[i])) << "n=" << n << " x=" << src[i];
    }
    for (size_t i = static_cast<size_t>(n) * 2 + 1; i < dst.size(); ++i) {
      ASSERT_EQ(dst[i], std::byte{0x5a}) << "wrote past the end, n=" << n;
    }
  }
}

TEST_P(KvStoreIsa, F16NanStaysNan) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::byte dst[2];
  store(&nan, dst, 1);
  uint16_t h;
  std::memcpy(&h, dst, 2);
  EXPECT_TRUE(std::isnan(fp16_to_fp32(h)));
}

INSTANTIATE_TEST_SUITE_P(Levels, KvStoreIsa, ::testing::Values(Isa::Scalar, Isa::Avx2, Isa::Avx512),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

}  // namespace
}  // namespace morphserve
