// Matmul with K-quant weights (Q4_K, Q5_K, Q6_K): the scalar reference against double-precision
// dots over the dequantized weights, and every SIMD level this CPU has against the scalar one, for
// GEMV token counts (1..15), GEMM ones (16, 17, 33, 50) and odd row counts.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/error.h"
#include "kernels/convert.h"
#include "kernels/matmul.h"
#include "kernels/random_inputs.h"

namespace morphserve {
namespace {

using testing::random_x;

struct KMatrix {
  DType type;
  int64_t rows, cols;
  AlignedBuffer data;
  std::vector<float> dequant;
  MatrixView view() const { return {type, data.data(), rows, cols}; }
};

// Gaussian weights with a per-row offset, so Q4_K/Q5_K mins are far from zero in some rows.
KMatrix make_matrix(DType type, int64_t rows, int64_t cols, uint32_t seed) {
  const size_t row_bytes = dtype_row_bytes(type, cols);
  KMatrix m{type, rows, cols, AlignedBuffer(row_bytes * static_cast<size_t>(rows)), {}};
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> row(static_cast<size_t>(cols));
  m.dequant.resize(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    const float offset = (r % 3 == 1) ? 0.7f : 0.0f;
    for (auto& v : row) v = dist(rng) + offset;
    std::byte* dst = m.data.data() + row_bytes * static_cast<size_t>(r);
    convert_row_from_f32(type, row.data(), dst, cols);
    dequantize_row(type, dst, m.dequant.data() + r * cols, cols);
  }
  return m;
}

struct Case {
  int64_t rows, cols, n;
};

std::vector<Case> cases() {
  std::vector<Case> out;
  for (int64_t n : {1, 2, 3, 4, 5, 7, 15, 16, 17, 33}) out.push_back({17, 768, n});
  out.push_back({1, 256, 1});
  out.push_back({3, 256, 2});
  out.push_back({257, 4096, 1});
  out.push_back({101, 2048, 16});
  // GEMM blocking: rows beyond one 64-row block, K chunks of 2048 + 2048 + 256, a full 48-token
  // panel and a one-vector one.
  out.push_back({70, 4352, 50});
  return out;
}

std::string describe(DType type, const Case& c) {
  return std::string(dtype_name(type)) + " " + std::to_string(c.rows) + "x" + std::to_string(c.cols) +
         " tokens=" + std::to_string(c.n);
}

class KQuantMatmul : public ::testing::TestWithParam<DType> {};

// The reference differs from the exact dot over its dequantized weights by the int8 activation
// rounding (at most Σ|w|·d_x/2) plus float rounding.
TEST_P(KQuantMatmul, ScalarMatchesDoublePrecision) {
  const DType type = GetParam();
  ThreadPool pool(2);
  uint32_t seed = 100;
  for (const Case& c : cases()) {
    SCOPED_TRACE(describe(type, c));
    const KMatrix m = make_matrix(type, c.rows, c.cols, ++seed);
    const std::vector<float> x = random_x(c.n, c.cols, seed + 1000);
    std::vector<float> y(static_cast<size_t>(c.n * c.rows), NAN);
    matmul_with_isa(Isa::Scalar, m.view(), x.data(), c.n, y.data(), pool);
    for (int64_t t = 0; t < c.n; ++t) {
      const float* xt = x.data() + t * c.cols;
      for (int64_t r = 0; r < c.rows; ++r) {
        const float* w = m.dequant.data() + r * c.cols;
        double sum = 0, mag = 0, bound = 0;
        for (int64_t b = 0; b < c.cols; b += 32) {
          float amax = 0;
          for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(xt[b + j]));
          for (int j = 0; j < 32; ++j) {
            sum += static_cast<double>(w[b + j]) * xt[b + j];
            mag += std::fabs(static_cast<double>(w[b + j]) * xt[b + j]);
            bound += std::fabs(w[b + j]) * (amax / 127.0 / 2.0);
          }
        }
        ASSERT_NEAR(y[static_cast<size_t>(t * c.rows + r)], sum, 1e-5 * mag + bound * 1.001 + 1e-30)
            << "token " << t << " row " << r;
      }
    }
  }
}

// Each SIMD level does the same integer arithmetic as the reference, so only float summation order
// differs: 1e-5 of Σ|w·x| covers it (the min term is part of w).
TEST_P(KQuantMatmul, SimdLevelsMatchScalar) {
  const DType type = GetParam();
  ThreadPool pool(2);
  uint32_t seed = 200;
  for (Isa isa : {Isa::Avx2, Isa::Avx512}) {
    if (!cpu_supports(isa)) {
      std::printf("[ SKIPPED level ] this CPU lacks %s\n", std::string(isa_name(isa)).c_str());
      continue;
    }
    for (const Case& c : cases()) {
      SCOPED_TRACE(describe(type, c) + " " + std::string(isa_name(isa)));
      const KMatrix m = make_matrix(type, c.rows, c.cols, ++seed);
      const std::vector<float> x = random_x(c.n, c.cols, seed + 1000);
      std::vector<float> y_scalar(static_cast<size_t>(c.n * c.rows), NAN), y(y_scalar.size(), NAN);
      matmul_with_isa(Isa::Scalar, m.view(), x.data(), c.n, y_scalar.data(), pool);
      matmul_with_isa(isa, m.view(), x.data(), c.n, y.data(), pool);
      for (int64_t t = 0; t < c.n; ++t) {
        for (int64_t r = 0; r < c.rows; ++r) {
          double mag = 0;
          for (int64_t k = 0; k < c.cols; ++k) {
            // Q4_K/Q5_K kernels add d·sc·q·x and subtract dmin·m·x separately; both are at most
            // (|w| + 2·|min|)·|x|, and the row offset keeps mins within a few |w|.
            mag += std::fabs(static_cast<double>(m.dequant[static_cast<size_t>(r * c.cols + k)]) *
                             x[static_cast<size_t>(t * c.cols + k)]);
          }
          const size_t i = static_cast<size_t>(t * c.rows + r);
          ASSERT_NEAR(y[i], y_scalar[i], 1e-5 * mag + 1e-30) << "token " << t << " row " << r;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(KTypes, KQuantMatmul, ::testing::Values(DType::Q4_K, DType::Q5_K, DType::Q6_K),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(KQuantMatmulValidation, ColsMustBeWholeSuperBlocks) {
  ThreadPool pool(1);
  AlignedBuffer data(4096);
  std::vector<float> x(288), y(1);
  const MatrixView w{DType::Q4_K, data.data(), 1, 288};
  try {
    matmul(w, x.data(), 1, y.data(), pool);
    FAIL() << "a 288-column q4_K matrix was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("cols divisible by 256"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace morphserve
