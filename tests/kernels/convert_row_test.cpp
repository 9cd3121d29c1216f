// dequantize_row / convert_row_from_f32 for every type: the vector converters of every level agree
// with core/half.h bit for bit (NaN payloads aside), quantized rows are the reference quantizers',
// and block formats refuse lengths that are not a multiple of 32.
#include "kernels/convert.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "kernels/cpu_features.h"
#include "kernels/matmul_impl.h"
#include "kernels/quantize_rows.h"

namespace morphserve {
namespace {

std::vector<float> test_floats(int64_t n) {
  std::mt19937 rng(11);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& f : v) {
    do {
      f = std::bit_cast<float>(static_cast<uint32_t>(rng()));
    } while (std::isnan(f));  // NaN payloads legitimately differ between F16C and half.h
  }
  const float specials[] = {0.0f, -0.0f, 1.0f, 65504.0f, 65520.0f, 1e-8f, 6e-5f, std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(), 1.00048828125f, 3.0517578e-05f};
  for (size_t i = 0; i < std::size(specials) && i < v.size(); ++i) v[i] = specials[i];
  return v;
}

TEST(ConvertRow, EveryLevelConvertsFloatsLikeHalfH) {
  // Lengths with every tail size of the 8- and 16-wide loops.
  for (int64_t n : {1, 7, 8, 15, 16, 17, 33, 1000}) {
    const std::vector<float> src = test_floats(n);
    std::vector<uint16_t> f16(static_cast<size_t>(n)), bf16(static_cast<size_t>(n));
    std::vector<float> back(static_cast<size_t>(n));
    const matmul_detail::RowConverters* levels[] = {&matmul_detail::scalar::row_converters(),
                                                    cpu_supports(Isa::Avx2) ? &matmul_detail::avx2::row_converters() : nullptr,
                                                    cpu_supports(Isa::Avx512) ? &matmul_detail::avx512::row_converters() : nullptr};
    for (const auto* conv : levels) {
      if (!conv) continue;
      conv->f32_to_f16(src.data(), f16.data(), n);
      conv->f32_to_bf16(src.data(), bf16.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        const size_t k = static_cast<size_t>(i);
        ASSERT_EQ(f16[k], fp32_to_fp16(src[k])) << "n=" << n << " i=" << i;
        ASSERT_EQ(bf16[k], fp32_to_bf16(src[k])) << "n=" << n << " i=" << i;
      }
      conv->f16_to_f32(f16.data(), back.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_EQ(std::bit_cast<uint32_t>(back[static_cast<size_t>(i)]),
                  std::bit_cast<uint32_t>(fp16_to_fp32(f16[static_cast<size_t>(i)])));
      }
      conv->bf16_to_f32(bf16.data(), back.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_EQ(std::bit_cast<uint32_t>(back[static_cast<size_t>(i)]), static_cast<uint32_t>(bf16[static_cast<size_t>(i)]) << 16);
      }
    }
  }
}

TEST(ConvertRow, QuantizedTypesUseTheReferenceQuantizers) {
  std::vector<float> src(96);
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 2.0f);
  for (auto& v : src) v = dist(rng);
  BlockQ8_0 q8[3], q8_ref[3];
  convert_row_from_f32(DType::Q8_0, src.data(), q8, 96);
  quantize_row_q8_0_ref(src.data(), q8_ref, 96);
  EXPECT_EQ(std::memcmp(q8, q8_ref, sizeof(q8)), 0);
  BlockQ4_0 q4[3], q4_ref[3];
  convert_row_from_f32(DType::Q4_0, src.data(), q4, 96);
  quantize_row_q4_0_ref(src.data(), q4_ref, 96);
  EXPECT_EQ(std::memcmp(q4, q4_ref, sizeof(q4)), 0);

  std::vector<float> a(96), b(96);
  dequantize_row(DType::Q8_0, q8, a.data(), 96);
  dequantize_row_q8_0(q8, b.data(), 96);
  EXPECT_EQ(a, b);
  dequantize_row(DType::Q4_0, q4, a.data(), 96);
  dequantize_row_q4_0(q4, b.data(), 96);
  EXPECT_EQ(a, b);
}

TEST(ConvertRow, F32IsACopy) {
  const std::vector<float> src = test_floats(37);
  std::vector<float> dst(37);
  convert_row_from_f32(DType::F32, src.data(), dst.data(), 37);
  EXPECT_EQ(std::memcmp(src.data(), dst.data(), 37 * sizeof(float)), 0);
  dequantize_row(DType::F32, src.data(), dst.data(), 37);
  EXPECT_EQ(std::memcmp(src.data(), dst.data(), 37 * sizeof(float)), 0);
}

TEST(ConvertRow, BlockFormatsNeedMultiplesOf32) {
  std::vector<float> src(40);
  std::vector<std::byte> dst(1024);
  EXPECT_THROW(convert_row_from_f32(DType::Q8_0, src.data(), dst.data(), 40), InvalidArgument);
  EXPECT_THROW(convert_row_from_f32(DType::Q4_0, src.data(), dst.data(), 40), InvalidArgument);
  EXPECT_THROW(dequantize_row(DType::Q8_0, dst.data(), src.data(), 33), InvalidArgument);
}

// The activation quantizer of every level must produce identical bytes (the levels then agree on
// every integer dot product), including exact .5 ties after scaling.
TEST(ActivationQuantizer, LevelsAreBitIdentical) {
  std::vector<float> x(32 * 64);
  std::mt19937 rng(8);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (auto& v : x) v = dist(rng);
  for (int j = 0; j < 32; ++j) x[static_cast<size_t>(j)] = static_cast<float>(j) - 15.5f;  // ties at amax 127?
  for (int j = 0; j < 32; ++j) x[static_cast<size_t>(32 + j)] = (j == 0) ? 127.0f : static_cast<float>(j) + 0.5f;
  for (int j = 0; j < 32; ++j) x[static_cast<size_t>(64 + j)] = 0.0f;
  const int64_t cols = static_cast<int64_t>(x.size());
  std::vector<int8_t> q_ref(x.size()), q(x.size());
  std::vector<float> d_ref(x.size() / 32), d(x.size() / 32);
  std::vector<int32_t> s_ref(x.size() / 32), s(x.size() / 32);
  matmul_detail::scalar::quantize_act_row(x.data(), cols, q_ref.data(), d_ref.data(), s_ref.data());
  EXPECT_EQ(q_ref[33], 2);  // 1.5 rounds to even
  EXPECT_EQ(q_ref[34], 2);  // 2.5 rounds to even
  EXPECT_EQ(d_ref[2], 0.0f);
  using QuantizeRow = void (*)(const float*, int64_t, int8_t*, float*, int32_t*);
  std::vector<QuantizeRow> levels;
  if (cpu_supports(Isa::Avx2)) levels.push_back(matmul_detail::avx2::quantize_act_row);
  if (cpu_supports(Isa::Avx512)) levels.push_back(matmul_detail::avx512::quantize_act_row);
  for (QuantizeRow quantize : levels) {
    quantize(x.data(), cols, q.data(), d.data(), s.data());
    EXPECT_EQ(q, q_ref);
    EXPECT_EQ(d, d_ref);
    EXPECT_EQ(s, s_ref);
  }
}

}  // namespace
}  // namespace morphserve
