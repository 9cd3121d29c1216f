// matmul_shared_input: several matrices against one input in one call give what one matmul per
// matrix gives, bit for bit, at every level, for decode, small batches and GEMM token counts,
// whether the outputs share a weight type (and so one preparation of the activations) or not;
// and bad arguments are refused before anything is written.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <span>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/error.h"
#include "kernels/convert.h"
#include "kernels/matmul.h"
#include "kernels/random_inputs.h"
#include "kernels/random_matrix.h"

namespace morphserve {
namespace {

using testing::random_matrix;
using testing::random_x;
using testing::RandomMatrix;
using testing::supported_levels;

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  // An empty vector's data() may be null, which memcmp must not be given even for 0 bytes.
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

// A layer-like mix at width 512: two Q4_K outputs (one preparation between them), a Q6_K one
// (llama.cpp's Q4_K_M puts attn_v there), F16, Q8_0 and Q4_0 ones, an output with no rows, and
// row counts that are not multiples of any kernel's row tile.
struct Mix {
  static constexpr int64_t kCols = 512;
  std::vector<RandomMatrix> matrices;
  Mix() {
    const struct {
      DType type;
      int64_t rows;
    } shapes[] = {{DType::Q4_K, 200}, {DType::Q6_K, 37}, {DType::Q4_K, 64}, {DType::F16, 97},
                  {DType::Q8_0, 33},  {DType::Q4_0, 0},  {DType::Q4_0, 130}};
    uint32_t seed = 100;
    for (const auto& s : shapes) matrices.push_back(random_matrix(s.type, s.rows, kCols, seed++));
  }
};

TEST(MatmulSharedInput, MatchesOneMatmulPerOutputAtEveryLevel) {
  const Mix mix;
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (Isa isa : supported_levels()) {
      for (int64_t n : {1, 3, 9, 16, 40, 130}) {
        const std::vector<float> x = random_x(n, Mix::kCols, static_cast<uint32_t>(n));
        std::vector<std::vector<float>> together, alone;
        std::vector<MatmulOutput> outputs;
        for (const RandomMatrix& m : mix.matrices) {
          together.emplace_back(static_cast<size_t>(n * m.view.rows), NAN);
          alone.emplace_back(static_cast<size_t>(n * m.view.rows), NAN);
        }
        for (size_t i = 0; i < mix.matrices.size(); ++i) outputs.push_back({mix.matrices[i].view, together[i].data()});
        matmul_shared_input_with_isa(isa, outputs, x.data(), n, pool);
        for (size_t i = 0; i < mix.matrices.size(); ++i) {
          matmul_with_isa(isa, mix.matrices[i].view, x.data(), n, alone[i].data(), pool);
          EXPECT_TRUE(bitwise_equal(together[i], alone[i]))
              << isa_name(isa) << ", " << threads << " threads, " << n << " tokens, output " << i << " ("
              << dtype_name(mix.matrices[i].view.type) << ", " << mix.matrices[i].view.rows << " rows)";
        }
      }
    }
  }
}

TEST(MatmulSharedInput, OneOutputIsMatmul) {
  ThreadPool pool(2);
  const RandomMatrix m = random_matrix(DType::Q4_0, 300, 256, 5);
  const std::vector<float> x = random_x(4, 256, 6);
  std::vector<float> a(4 * 300), b(4 * 300);
  const MatmulOutput out{m.view, a.data()};
  matmul_shared_input(std::span<const MatmulOutput>(&out, 1), x.data(), 4, pool);
  matmul(m.view, x.data(), 4, b.data(), pool);
  EXPECT_TRUE(bitwise_equal(a, b));
}

TEST(MatmulSharedInput, RefusesBadArgumentsBeforeWritingAnything) {
  ThreadPool pool(2);
  const RandomMatrix wide = random_matrix(DType::Q4_0, 8, 256, 1);
  const RandomMatrix narrow = random_matrix(DType::Q4_0, 8, 128, 2);
  const std::vector<float> x = random_x(1, 256, 3);
  std::vector<float> y0(8, 7.0f), y1(8, 7.0f);

  const MatmulOutput widths[] = {{wide.view, y0.data()}, {narrow.view, y1.data()}};
  EXPECT_THROW(matmul_shared_input(widths, x.data(), 1, pool), InvalidArgument);

  MatrixView null_data = wide.view;
  null_data.data = nullptr;
  const MatmulOutput malformed[] = {{wide.view, y0.data()}, {null_data, y1.data()}};
  EXPECT_THROW(matmul_shared_input(malformed, x.data(), 1, pool), InvalidArgument);

  const MatmulOutput no_output[] = {{wide.view, y0.data()}, {wide.view, nullptr}};
  EXPECT_THROW(matmul_shared_input(no_output, x.data(), 1, pool), InvalidArgument);

  EXPECT_EQ(y0, std::vector<float>(8, 7.0f)) << "the first output was written before the second was refused";
  EXPECT_EQ(y1, std::vector<float>(8, 7.0f));
}

TEST(MatmulSharedInput, NoOutputsOrNoTokensDoNothing) {
  ThreadPool pool(2);
  const RandomMatrix m = random_matrix(DType::F16, 8, 64, 1);
  std::vector<float> y(8, 7.0f);
  const float x[64] = {};
  matmul_shared_input(std::span<const MatmulOutput>(), x, 1, pool);
  const MatmulOutput out{m.view, y.data()};
  matmul_shared_input(std::span<const MatmulOutput>(&out, 1), x, 0, pool);
  EXPECT_EQ(y, std::vector<float>(8, 7.0f));
}

}  // namespace
}  // namespace morphserve
