// The runner on random-weight models: chunking, batching and per-layer precision must not change
// what a sequence computes.
#include "engine/llama_runner.h"

#include <cmath>
#include <memory>

#include <gtest/gtest.h>

#include "core/error.h"
#include "engine/generation.h"
#include "engine/model_loader.h"
#include "kernels/thread_pool.h"
#include "test_backend.h"

namespace morphserve {
namespace {

class TinyRunner : public ::testing::Test {
 protected:
  void SetUp() override { model_ = std::make_unique<LlamaModel>(load_model("dummy:tiny:f32", "", pool_, test_backend())); }

  KvLayout layout(DType type = DType::F32) const {
    return KvLayout{model_->config.n_layers, 16, model_->config.kv_dim(), type};
  }

  // Logits of every position of `tokens`, fed `chunk` tokens per forward pass.
  std::vector<float> all_logits(const LlamaModel& model, const std::vector<int32_t>& tokens, int64_t chunk,
                                DType kv_type = DType::F32) {
    KvBlockPool kv(layout(kv_type), 16, test_backend());
    LlamaRunner runner(model, kv, test_backend(), chunk);
    SequenceKv seq;
    EXPECT_TRUE(seq.reserve(kv, static_cast<int64_t>(tokens.size())));
    std::vector<float> out;
    for (size_t start = 0; start < tokens.size(); start += static_cast<size_t>(chunk)) {
      const size_t n = std::min<size_t>(static_cast<size_t>(chunk), tokens.size() - start);
      const BatchSequence piece{std::span(tokens).subspan(start, n), static_cast<int64_t>(start), &seq.blocks, true};
      const auto logits = runner.forward(std::span(&piece, 1));
      out.insert(out.end(), logits.begin(), logits.end());
    }
    seq.release_all(kv);
    return out;
  }

  static double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    EXPECT_EQ(a.size(), b.size());
    double m = 0;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, static_cast<double>(std::abs(a[i] - b[i])));
    return m;
  }

  std::vector<int32_t> prompt(size_t n, int32_t offset = 0) const {
    std::vector<int32_t> tokens;
    for (size_t i = 0; i < n; ++i) tokens.push_back(static_cast<int32_t>(3 + (i * 37 + offset) % 256));
    return tokens;
  }

  ThreadPool pool_{2};
  std::unique_ptr<LlamaModel> model_;
};

TEST_F(TinyRunner, ChunkedPrefillEqualsOnePass) {
  const auto tokens = prompt(45);
  const auto whole = all_logits(*model_, tokens, 45);
  for (int64_t chunk : {1, 7, 16, 20}) EXPECT_LT(max_abs_diff(whole, all_logits(*model_, tokens, chunk)), 1e-4) << chunk;
  for (float v : whole) ASSERT_TRUE(std::isfinite(v));
}

TEST_F(TinyRunner, BatchedSequencesEqualEachAlone) {
  const auto a = prompt(21, 0);
  const auto b = prompt(9, 5);
  const auto alone_a = all_logits(*model_, a, 64);
  const auto alone_b = all_logits(*model_, b, 64);
  KvBlockPool kv(layout(), 16, test_backend());
  LlamaRunner runner(*model_, kv, test_backend(), 64);
  SequenceKv sa, sb;
  ASSERT_TRUE(sa.reserve(kv, 21));
  ASSERT_TRUE(sb.reserve(kv, 9));
  const BatchSequence batch[] = {{a, 0, &sa.blocks, true}, {b, 0, &sb.blocks, true}};
  const auto logits = runner.forward(batch);
  const size_t vocab = static_cast<size_t>(model_->config.vocab_size);
  ASSERT_EQ(logits.size(), (21 + 9) * vocab);
  EXPECT_LT(max_abs_diff(std::vector<float>(logits.begin(), logits.begin() + 21 * vocab), alone_a), 1e-4);
  EXPECT_LT(max_abs_diff(std::vector<float>(logits.begin() + 21 * vocab, logits.end()), alone_b), 1e-4);
}

TEST_F(TinyRunner, EachLayerRunsInItsOwnFormat) {
  LlamaModel mixed = load_model("dummy:tiny:f32", "0:w4,1:w8,2:bf16", pool_, test_backend());
  EXPECT_EQ(mixed.weights.layers[0].wq.type, DType::Q4_0);
  EXPECT_EQ(mixed.weights.layers[1].w_down.type, DType::Q8_0);
  EXPECT_EQ(mixed.weights.layers[2].wo.type, DType::BF16);
  EXPECT_EQ(mixed.weights.layers[3].wv.type, DType::F32);
  EXPECT_LT(mixed.weights.layers[0].linear_bytes(), mixed.weights.layers[1].linear_bytes());
  const auto tokens = prompt(30);
  const auto reference = all_logits(*model_, tokens, 30);
  const auto quantized = all_logits(mixed, tokens, 30);
  // W4 on random weights moves logits noticeably; the test is that the arithmetic changed while
  // the output stayed the same function (relative RMS error well under 1).
  double err2 = 0.0, ref2 = 0.0;
  for (size_t i = 0; i < reference.size(); ++i) {
    err2 += (reference[i] - quantized[i]) * (reference[i] - quantized[i]);
    ref2 += reference[i] * reference[i];
  }
  EXPECT_GT(err2, 0.0);
  EXPECT_LT(std::sqrt(err2 / ref2), 0.3) << "relative RMS error of the mixed-precision logits";
}

TEST_F(TinyRunner, F16CacheIsCloseToF32Cache) {
  const auto tokens = prompt(40);
  EXPECT_LT(max_abs_diff(all_logits(*model_, tokens, 40, DType::F32), all_logits(*model_, tokens, 40, DType::F16)), 5e-2);
}

TEST_F(TinyRunner, RejectsBadBatches) {
  KvBlockPool kv(layout(), 4, test_backend());
  LlamaRunner runner(*model_, kv, test_backend(), 8);
  SequenceKv seq;
  ASSERT_TRUE(seq.reserve(kv, 16));
  const std::vector<int32_t> bad_token = {5, 99999};
  const BatchSequence out_of_vocab{bad_token, 0, &seq.blocks, false};
  EXPECT_THROW(runner.forward(std::span(&out_of_vocab, 1)), InvalidArgument);
  const auto long_prompt = prompt(9);
  const BatchSequence too_many{long_prompt, 0, &seq.blocks, false};
  EXPECT_THROW(runner.forward(std::span(&too_many, 1)), InvalidArgument);
  const auto few = prompt(4);
  const BatchSequence past_blocks{few, 14, &seq.blocks, false};
  EXPECT_THROW(runner.forward(std::span(&past_blocks, 1)), InvalidArgument);
  EXPECT_THROW(runner.forward({}), InvalidArgument);
  seq.release_all(kv);
}

TEST_F(TinyRunner, GenerationIsReproducibleWithASeedAndStopsAtEos) {
  KvBlockPool kv(layout(), 16, test_backend());
  LlamaRunner runner(*model_, kv, test_backend(), 32);
  GenerationOptions options;
  options.max_new_tokens = 20;
  options.sampling = SamplingParams{0.8f, 40, 0.95f, 0.0f, 1234};
  std::vector<int32_t> first, second;
  generate_tokens(runner, kv, prompt(10), options, [&](int32_t t) { return first.push_back(t), true; });
  generate_tokens(runner, kv, prompt(10), options, [&](int32_t t) { return second.push_back(t), true; });
  EXPECT_EQ(first.size(), 20u);
  EXPECT_EQ(first, second);
  options.eos = first[3];
  std::vector<int32_t> stopped;
  generate_tokens(runner, kv, prompt(10), options, [&](int32_t t) { return stopped.push_back(t), true; });
  EXPECT_LE(stopped.size(), 4u);
  EXPECT_EQ(stopped.back(), first[3]);
  EXPECT_EQ(kv.used_blocks(), 0);
}

}  // namespace
}  // namespace morphserve
