// The SIMD matmuls at the extremes of their integer ranges: every weight at its largest level (or
// Q8_0's −128) against activations that all quantize to ±127. Random weights never come near the
// int16 limits the AVX2 kernels rely on (maddubs pairs, the GEMM's int16 sums over several 4-k
// steps), so an overflow there would pass every other test; here it would be off by thousands.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/aligned_buffer.h"
#include "kernels/cpu_features.h"
#include "kernels/matmul.h"
#include "kernels/thread_pool.h"

namespace morphserve {
namespace {

constexpr uint16_t kOneF16 = 0x3C00;

void put_f16(std::byte* at, uint16_t v) { std::memcpy(at, &v, 2); }

// rows × cols of `type` with every quant byte `fill` and every fp16 scale 1 (Q6_K's int8 sub-block
// scales `q6_scale`).
AlignedBuffer extreme_matrix(DType type, int64_t rows, int64_t cols, uint8_t fill, int8_t q6_scale) {
  const size_t row_bytes = dtype_row_bytes(type, cols);
  AlignedBuffer data(row_bytes * static_cast<size_t>(rows));
  std::memset(data.data(), fill, data.size());
  const int64_t block = dtype_is_kquant(type) ? kKQuantBlock : kQuantBlock;
  const int64_t blocks = rows * cols / block;
  const size_t block_bytes = dtype_row_bytes(type, block);
  for (int64_t b = 0; b < blocks; ++b) {
    std::byte* block = data.data() + static_cast<size_t>(b) * block_bytes;
    switch (type) {
      case DType::Q8_0:
      case DType::Q4_0: put_f16(block, kOneF16); break;
      case DType::Q4_K:
      case DType::Q5_K:
        put_f16(block, kOneF16);      // d
        put_f16(block + 2, kOneF16);  // dmin
        break;
      default:  // Q6_K: ql[128] qh[64] scales[16] d
        std::memset(block + 192, static_cast<uint8_t>(q6_scale), 16);
        put_f16(block + 208, kOneF16);
        break;
    }
  }
  return data;
}

struct Extreme {
  DType type;
  uint8_t fill;
  int8_t q6_scale;
  std::string name;
};

class MatmulExtremes : public ::testing::TestWithParam<Extreme> {};

TEST_P(MatmulExtremes, EveryLevelAgreesWithTheScalarReference) {
  const Extreme e = GetParam();
  constexpr int64_t kRows = 5, kCols = 2560;  // a K chunk of 2048 and a tail
  const AlignedBuffer w = extreme_matrix(e.type, kRows, kCols, e.fill, e.q6_scale);
  const MatrixView view{e.type, w.data(), kRows, kCols};
  ThreadPool pool(2);
  for (int64_t n : {1, 7, 8, 16, 33}) {
    // Tokens alternate all +1 and all −1 (every activation quantizes to ±127).
    std::vector<float> x(static_cast<size_t>(n * kCols));
    for (int64_t t = 0; t < n; ++t)
      for (int64_t k = 0; k < kCols; ++k) x[static_cast<size_t>(t * kCols + k)] = t % 2 ? -1.0f : 1.0f;
    std::vector<float> y_scalar(static_cast<size_t>(n * kRows), NAN);
    matmul_with_isa(Isa::Scalar, view, x.data(), n, y_scalar.data(), pool);
    for (Isa isa : {Isa::Avx2, Isa::Avx512}) {
      if (!cpu_supports(isa)) continue;
      SCOPED_TRACE(std::string(isa_name(isa)) + " tokens=" + std::to_string(n));
      std::vector<float> y(y_scalar.size(), NAN);
      matmul_with_isa(isa, view, x.data(), n, y.data(), pool);
      for (size_t i = 0; i < y.size(); ++i) {
        ASSERT_NE(y_scalar[i], 0.0f) << "the reference should be far from zero at output " << i;
        ASSERT_NEAR(y[i], y_scalar[i], 1e-5 * std::fabs(y_scalar[i])) << "output " << i;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, MatmulExtremes,
                         ::testing::Values(Extreme{DType::Q4_0, 0xFF, 0, "q4_0_level15"},
                                           Extreme{DType::Q8_0, 0x7F, 0, "q8_0_plus127"},
                                           Extreme{DType::Q8_0, 0x80, 0, "q8_0_minus128"},
                                           Extreme{DType::Q4_K, 0xFF, 0, "q4_K_level15"},
                                           Extreme{DType::Q5_K, 0xFF, 0, "q5_K_level31"},
                                           Extreme{DType::Q6_K, 0xFF, 127, "q6_K_level63"},
                                           Extreme{DType::Q6_K, 0x00, -128, "q6_K_level0"}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace morphserve
