// matmul's contract beyond numerics: argument checks, thread-count independence, the GEMM path's
// panels and K chunks, and Q8_0 weights at the −128 extreme.
#include "kernels/matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/error.h"
#include "core/half.h"
#include "kernels/convert.h"
#include "kernels/random_inputs.h"
#include "kernels/random_matrix.h"

namespace morphserve {
namespace {

using testing::random_matrix;
using testing::random_x;
using testing::RandomMatrix;
using testing::supported_levels;

// Σ|w·x| per output, via the scalar path on |w| and |x| would need |w| in every format; the
// dequantized weights give it directly.
std::vector<double> magnitudes(const MatrixView& w, const std::vector<float>& x, int64_t n) {
  std::vector<float> row(static_cast<size_t>(w.cols));
  std::vector<double> mag(static_cast<size_t>(n * w.rows));
  for (int64_t r = 0; r < w.rows; ++r) {
    dequantize_row(w.type, w.row(r), row.data(), w.cols);
    for (int64_t t = 0; t < n; ++t) {
      double m = 0.0;
      for (int64_t c = 0; c < w.cols; ++c) m += std::fabs(static_cast<double>(row[static_cast<size_t>(c)]) * x[static_cast<size_t>(t * w.cols + c)]);
      mag[static_cast<size_t>(t * w.rows + r)] = m;
    }
  }
  return mag;
}

void expect_levels_agree(const MatrixView& w, int64_t n, uint32_t seed) {
  ThreadPool pool(2);
  const std::vector<float> x = random_x(n, w.cols, seed);
  const std::vector<double> mag = magnitudes(w, x, n);
  std::vector<float> ref(static_cast<size_t>(n * w.rows));
  matmul_with_isa(Isa::Scalar, w, x.data(), n, ref.data(), pool);
  for (Isa isa : supported_levels()) {
    std::vector<float> y(ref.size(), NAN);
    matmul_with_isa(isa, w, x.data(), n, y.data(), pool);
    for (size_t i = 0; i < y.size(); ++i) {
      ASSERT_NEAR(y[i], ref[i], 1e-5 * mag[i] + 1e-30) << isa_name(isa) << " " << dtype_name(w.type) << " " << w.rows
                                                        << "x" << w.cols << " n=" << n << " at " << i;
    }
  }
}

TEST(MatmulApi, RejectsBadArguments) {
  ThreadPool pool(1);
  std::vector<float> x(64), y(64);
  const RandomMatrix q8 = random_matrix(DType::Q8_0, 2, 64, 1);
  MatrixView odd = q8.view;
  odd.cols = 48;  // not a multiple of 32
  EXPECT_THROW(matmul(odd, x.data(), 1, y.data(), pool), InvalidArgument);
  MatrixView null_data = q8.view;
  null_data.data = nullptr;
  EXPECT_THROW(matmul(null_data, x.data(), 1, y.data(), pool), InvalidArgument);
  EXPECT_THROW(matmul(q8.view, nullptr, 1, y.data(), pool), InvalidArgument);
  EXPECT_THROW(matmul(q8.view, x.data(), -1, y.data(), pool), InvalidArgument);
  MatrixView bad_type = q8.view;
  bad_type.type = static_cast<DType>(3);
  EXPECT_THROW(matmul(bad_type, x.data(), 1, y.data(), pool), InvalidArgument);
  if (cpu_max_isa() != Isa::Avx512) {
    EXPECT_THROW(matmul_with_isa(Isa::Avx512, q8.view, x.data(), 1, y.data(), pool), InvalidArgument);
  }
}

TEST(MatmulApi, ZeroTokensOrRowsWriteNothing) {
  ThreadPool pool(2);
  const RandomMatrix w = random_matrix(DType::F16, 5, 64, 2);
  std::vector<float> x(64, 1.0f), y(5, 42.0f);
  matmul(w.view, x.data(), 0, y.data(), pool);
  for (float v : y) EXPECT_EQ(v, 42.0f);
  MatrixView empty = w.view;
  empty.rows = 0;
  matmul(empty, x.data(), 1, y.data(), pool);
  for (float v : y) EXPECT_EQ(v, 42.0f);
}

TEST(MatmulApi, ResultsDoNotDependOnThreadCount) {
  for (DType type : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
    const RandomMatrix w = random_matrix(type, 203, 320, 3);
    for (int64_t n : {1, 3, 40}) {  // GEMV, small batch, GEMM
      const std::vector<float> x = random_x(n, 320, 4);
      std::vector<float> y1(static_cast<size_t>(n * 203)), y(y1.size());
      ThreadPool one(1);
      for (Isa isa : supported_levels()) {
        matmul_with_isa(isa, w.view, x.data(), n, y1.data(), one);
        for (int threads : {2, 3, 5}) {
          ThreadPool pool(threads);
          matmul_with_isa(isa, w.view, x.data(), n, y.data(), pool);
          ASSERT_EQ(std::memcmp(y.data(), y1.data(), y.size() * sizeof(float)), 0)
              << dtype_name(type) << " " << isa_name(isa) << " n=" << n << " threads=" << threads;
        }
      }
    }
  }
}

TEST(MatmulApi, MatmulUsesTheActiveLevel) {
  ThreadPool pool(2);
  const RandomMatrix w = random_matrix(DType::Q4_0, 33, 256, 5);
  const std::vector<float> x = random_x(3, 256, 6);
  std::vector<float> a(99), b(99);
  matmul(w.view, x.data(), 3, a.data(), pool);
  matmul_with_isa(active_isa(), w.view, x.data(), 3, b.data(), pool);
  EXPECT_EQ(a, b);
}

// Many tokens: several token panels (the last one narrow) and several K chunks with a tail.
TEST(MatmulApi, GemmPanelsAndChunksMatchScalar) {
  expect_levels_agree(random_matrix(DType::F16, 29, 1100, 7).view, 100, 8);
  expect_levels_agree(random_matrix(DType::F32, 13, 531, 9).view, 130, 10);
  expect_levels_agree(random_matrix(DType::Q8_0, 29, 4160, 11).view, 67, 12);
  expect_levels_agree(random_matrix(DType::Q4_0, 31, 2080, 13).view, 100, 14);
  expect_levels_agree(random_matrix(DType::BF16, 7, 64, 15).view, 16, 16);
}

// Q8_0 allows −128 although the reference quantizer never writes it; the unsigned-offset and
// sign tricks must still be exact.
TEST(MatmulApi, Q8_0ExtremeWeights) {
  const int64_t rows = 9, cols = 256;
  AlignedBuffer data(dtype_row_bytes(DType::Q8_0, cols) * rows);
  auto* blocks = data.as<BlockQ8_0>();
  std::mt19937 rng(17);
  for (int64_t b = 0; b < rows * cols / 32; ++b) {
    blocks[b].d = fp32_to_fp16(0.01f * static_cast<float>(1 + rng() % 100));
    for (int j = 0; j < 32; ++j) blocks[b].qs[j] = static_cast<int8_t>(b % 3 == 0 ? -128 : static_cast<int>(rng() % 256) - 128);
  }
  const MatrixView w{DType::Q8_0, data.data(), rows, cols};
  for (int64_t n : {1, 2, 17}) expect_levels_agree(w, n, 18);
}

}  // namespace
}  // namespace morphserve
