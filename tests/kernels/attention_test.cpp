// Paged attention against a naive float64 reference over a contiguous K/V copy. The blocks are
// separate allocations handed out in shuffled order, and the unused slots of the last block hold
// NaN, so a kernel that assumes contiguity or reads past the causal limit fails loudly.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/aligned_buffer.h"
#include "core/error.h"
#include "core/half.h"
#include "kernels/attention.h"
#include "kernels/kv_write.h"
#include "kernels/thread_pool.h"

namespace morphserve {
namespace {

struct Shape {
  int n_heads;
  int n_kv_heads;
  int head_dim;
  int block_size;
  int64_t n_q;
  int64_t first_pos;
  DType type;
  float q_magnitude = 1.0f;  // large values make the softmax peaked and move the running max
};

std::string describe(const Shape& s) {
  return "heads " + std::to_string(s.n_heads) + "/" + std::to_string(s.n_kv_heads) + " hd " +
         std::to_string(s.head_dim) + " bs " + std::to_string(s.block_size) + " n_q " + std::to_string(s.n_q) +
         " first_pos " + std::to_string(s.first_pos) + " " + std::string(dtype_name(s.type)) + " |q| " +
         std::to_string(s.q_magnitude);
}

// One sequence's K/V in scattered blocks, plus the values as stored (after F16 rounding) in a
// contiguous [token][kv_head][head_dim] copy for the reference.
class PagedKv {
 public:
  PagedKv(const Shape& s, int64_t n_keys, uint32_t seed) : shape_(s) {
    const int64_t row = int64_t{s.n_kv_heads} * s.head_dim;
    const size_t elem = s.type == DType::F16 ? 2 : 4;
    const int64_t n_blocks = (n_keys + s.block_size - 1) / s.block_size;
    // Allocate twice as many buffers as needed, interleaved with spacers, and give the sequence a
    // shuffled subset: logical order and address order disagree.
    std::mt19937 rng(seed);
    const size_t block_bytes = static_cast<size_t>(s.block_size * row) * elem;
    for (int64_t i = 0; i < 2 * n_blocks; ++i) {
      k_pool_.emplace_back(block_bytes);
      v_pool_.emplace_back(block_bytes);
      spacers_.emplace_back(64 * (1 + i % 3));
    }
    std::vector<size_t> order(k_pool_.size());
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> nan_row(static_cast<size_t>(row), nan);
    for (int64_t b = 0; b < n_blocks; ++b) {
      k_blocks_.push_back(k_pool_[order[b]].data());
      v_blocks_.push_back(v_pool_[order[b]].data());
      for (int j = 0; j < s.block_size; ++j) {  // poison every slot; real tokens overwrite theirs
        kv_store_row(s.type, nan_row.data(), k_pool_[order[b]].data() + j * row * elem, row);
        kv_store_row(s.type, nan_row.data(), v_pool_[order[b]].data() + j * row * elem, row);
      }
    }
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    k_.resize(static_cast<size_t>(n_keys * row));
    v_.resize(k_.size());
    std::vector<float> krow(static_cast<size_t>(row)), vrow(krow.size());
    for (int64_t t = 0; t < n_keys; ++t) {
      for (auto& x : krow) x = dist(rng);
      for (auto& x : vrow) x = dist(rng);
      const int64_t b = t / s.block_size, j = t % s.block_size;
      kv_store_row(s.type, krow.data(), k_pool_[order[b]].data() + j * row * elem, row);
      kv_store_row(s.type, vrow.data(), v_pool_[order[b]].data() + j * row * elem, row);
      for (int64_t i = 0; i < row; ++i) {
        const bool f16 = s.type == DType::F16;
        k_[t * row + i] = f16 ? fp16_to_fp32(fp32_to_fp16(krow[i])) : krow[i];
        v_[t * row + i] = f16 ? fp16_to_fp32(fp32_to_fp16(vrow[i])) : vrow[i];
      }
    }
  }

  KvBlocks blocks() const {
    KvBlocks kv;
    kv.type = shape_.type;
    kv.k_blocks = k_blocks_.data();
    kv.v_blocks = v_blocks_.data();
    kv.block_size = shape_.block_size;
    kv.n_kv_heads = shape_.n_kv_heads;
    kv.head_dim = shape_.head_dim;
    return kv;
  }

  // Naive causal attention in double over the contiguous copy.
  std::vector<double> reference(const std::vector<float>& q, float scale) const {
    const Shape& s = shape_;
    const int hd = s.head_dim;
    const int64_t row = int64_t{s.n_kv_heads} * hd;
    std::vector<double> out(q.size(), 0.0);
    for (int64_t i = 0; i < s.n_q; ++i) {
      const int64_t n = s.first_pos + i + 1;
      for (int h = 0; h < s.n_heads; ++h) {
        const int kvh = h / (s.n_heads / s.n_kv_heads);
        const float* qh = q.data() + (i * s.n_heads + h) * hd;
        std::vector<double> score(static_cast<size_t>(n));
        double max = -INFINITY;
        for (int64_t t = 0; t < n; ++t) {
          double dot = 0.0;
          for (int d = 0; d < hd; ++d) dot += double{qh[d]} * k_[t * row + kvh * hd + d];
          score[t] = dot * scale;
          max = std::max(max, score[t]);
        }
        double sum = 0.0;
        for (auto& x : score) sum += x = std::exp(x - max);
        double* o = out.data() + (i * s.n_heads + h) * hd;
        for (int64_t t = 0; t < n; ++t) {
          for (int d = 0; d < hd; ++d) o[d] += score[t] / sum * v_[t * row + kvh * hd + d];
        }
      }
    }
    return out;
  }

 private:
  Shape shape_;
  std::vector<AlignedBuffer> k_pool_, v_pool_, spacers_;
  std::vector<const std::byte*> k_blocks_, v_blocks_;
  std::vector<float> k_, v_;
};

std::vector<float> random_queries(const Shape& s, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-s.q_magnitude, s.q_magnitude);
  std::vector<float> q(static_cast<size_t>(s.n_q * s.n_heads * s.head_dim));
  for (auto& x : q) x = dist(rng);
  return q;
}

const std::vector<Shape> kShapes = {
    {8, 8, 64, 16, 1, 100, DType::F32},          // MHA decode
    {8, 8, 64, 16, 1, 100, DType::F16},
    {8, 4, 8, 16, 5, 0, DType::F16},             // stories260K-like GQA prefill from position 0
    {8, 4, 8, 16, 1, 42, DType::F32},
    {32, 8, 128, 16, 1, 300, DType::F16},        // Llama-3-like GQA decode past several key chunks
    {32, 8, 128, 7, 9, 37, DType::F32},          // prefill chunk, first_pos > 0, odd block size
    {8, 4, 64, 1, 3, 20, DType::F16},            // one token per block
    {8, 8, 128, 16, 17, 47, DType::F32, 8.0f},   // peaked scores: the running max keeps moving
    {8, 4, 128, 16, 4, 140, DType::F16, 8.0f},
    {4, 2, 8, 7, 1, 0, DType::F32},              // a single key
    {4, 1, 72, 16, 2, 70, DType::F32},           // head_dim not a multiple of 16 (masked tail)
    {4, 2, 20, 5, 3, 30, DType::F16},            // nor of 8
    {2, 1, 256, 16, 2, 65, DType::F16},          // largest supported head
    {12, 1, 64, 16, 2, 150, DType::F16},         // MQA, group of 12: units of 6 heads
    {6, 2, 32, 16, 4, 90, DType::F32},           // group of 3
};

void expect_close(const std::vector<float>& actual, const std::vector<double>& expected, const Shape& s,
                  const std::string& what) {
  for (size_t i = 0; i < actual.size(); ++i) {
    ASSERT_NEAR(actual[i], expected[i], 2e-5) << what << ", " << describe(s) << ", element " << i;
  }
}

class AttentionIsa : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!cpu_supports(GetParam())) GTEST_SKIP() << "this CPU lacks " << isa_name(GetParam());
  }
};

TEST_P(AttentionIsa, MatchesFloat64Reference) {
  ThreadPool pool(2);
  uint32_t seed = 1;
  for (const Shape& s : kShapes) {
    const PagedKv kv(s, s.first_pos + s.n_q, seed++);
    const auto q = random_queries(s, seed++);
    const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
    std::vector<float> out(q.size(), -1.0f);
    attention_with_isa(GetParam(), q.data(), s.n_q, s.first_pos, s.n_heads, kv.blocks(), scale, out.data(), pool);
    expect_close(out, kv.reference(q, scale), s, std::string(isa_name(GetParam())));
  }
}

class AttentionSimd : public AttentionIsa {};

TEST_P(AttentionSimd, MatchesScalar) {
  ThreadPool pool(2);
  uint32_t seed = 100;
  for (const Shape& s : kShapes) {
    const PagedKv kv(s, s.first_pos + s.n_q, seed++);
    const auto q = random_queries(s, seed++);
    const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
    std::vector<float> expected(q.size()), actual(q.size());
    attention_with_isa(Isa::Scalar, q.data(), s.n_q, s.first_pos, s.n_heads, kv.blocks(), scale, expected.data(), pool);
    attention_with_isa(GetParam(), q.data(), s.n_q, s.first_pos, s.n_heads, kv.blocks(), scale, actual.data(), pool);
    for (size_t i = 0; i < q.size(); ++i) ASSERT_NEAR(actual[i], expected[i], 1e-5) << describe(s) << " i=" << i;
  }
}

TEST_P(AttentionIsa, ThreadCountDoesNotChangeTheResult) {
  // Each (query, head) is computed by one thread start to finish, so any split is bit-identical.
  const Shape s{8, 2, 64, 16, 23, 200, DType::F16};
  const PagedKv kv(s, s.first_pos + s.n_q, 7);
  const auto q = random_queries(s, 8);
  std::vector<float> one(q.size()), three(q.size());
  ThreadPool pool1(1), pool3(3);
  attention_with_isa(GetParam(), q.data(), s.n_q, s.first_pos, s.n_heads, kv.blocks(), 0.125f, one.data(), pool1);
  attention_with_isa(GetParam(), q.data(), s.n_q, s.first_pos, s.n_heads, kv.blocks(), 0.125f, three.data(), pool3);
  EXPECT_EQ(one, three);
}

INSTANTIATE_TEST_SUITE_P(Levels, AttentionIsa, ::testing::Values(Isa::Scalar, Isa::Avx2, Isa::Avx512),
                         [](const auto& info) { return std::string(isa_name(info.param)); });
INSTANTIATE_TEST_SUITE_P(Levels, AttentionSimd, ::testing::Values(Isa::Avx2, Isa::Avx512),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

TEST(Attention, RejectsBadShapes) {
  ThreadPool pool(1);
  const float q[8] = {};
  float out[8];
  const std::byte* table[1] = {nullptr};
  KvBlocks kv;
  kv.k_blocks = table;
  kv.v_blocks = table;
  kv.n_kv_heads = 3;
  kv.head_dim = 8;
  EXPECT_THROW(attention(q, 1, 0, 4, kv, 1.0f, out, pool), InvalidArgument);  // 4 % 3 != 0
  kv.n_kv_heads = 1;
  kv.head_dim = kMaxAttentionHeadDim + 1;
  EXPECT_THROW(attention(q, 1, 0, 1, kv, 1.0f, out, pool), InvalidArgument);
  kv.head_dim = 8;
  kv.type = DType::Q8_0;
  EXPECT_THROW(attention(q, 1, 0, 1, kv, 1.0f, out, pool), InvalidArgument);
  kv.type = DType::F32;
  kv.block_size = 0;
  EXPECT_THROW(attention(q, 1, 0, 1, kv, 1.0f, out, pool), InvalidArgument);
  kv.block_size = 16;
  EXPECT_THROW(attention(q, 1, -1, 1, kv, 1.0f, out, pool), InvalidArgument);
  attention(q, 0, 0, 1, kv, 1.0f, out, pool);  // no queries: nothing to do, nothing read
}

}  // namespace
}  // namespace morphserve
