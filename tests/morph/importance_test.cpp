#include "morph/importance.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "engine/kv_block_pool.h"
#include "engine/llama_runner.h"
#include "engine/model_loader.h"
#include "kernels/thread_pool.h"
#include "model/dummy_model.h"
#include "test_data.h"
#include "test_backend.h"

namespace morphserve {
namespace {

std::vector<int32_t> calibration_tokens(const LlamaModel& model) {
  std::string text;
  for (int i = 0; i < 12; ++i) {
    text += "Once upon a time, a little fox found " + std::to_string(i * 7) +
            " shiny stones by the river and carried them home to show her mother. ";
  }
  return model.tokenizer.encode(text, true);
}

ImportanceOptions small_options(const LlamaModel& model) {
  ImportanceOptions o;
  o.ctx = 32;
  o.max_tokens = 64;
  o.batch = 20;  // smaller than a window: the observer must place pieces at their offsets
  o.bos = model.tokenizer.bos();
  return o;
}

void expect_permutation(const std::vector<int>& order, int n) {
  std::vector<int> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int> expected(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) expected[static_cast<size_t>(i)] = i;
  EXPECT_EQ(sorted, expected);
}

// Logits of every token of every calibration window, computed the plain way: a fresh runner over
// a model whose layers were converted by the loader, independent of the profiler's view swaps.
std::vector<float> all_window_logits(const LlamaModel& model, const std::vector<int32_t>& tokens,
                                     const ImportanceOptions& o) {
  KvBlockPool kv(KvLayout{model.config.n_layers, 16, model.config.kv_dim(), o.kv_type}, (o.ctx + 15) / 16, test_backend());
  LlamaRunner runner(model, kv, test_backend(), o.ctx);
  std::vector<float> out;
  for (int64_t w = 0; w < o.max_tokens / o.ctx; ++w) {
    std::vector<int32_t> window(tokens.begin() + w * o.ctx, tokens.begin() + (w + 1) * o.ctx);
    window[0] = o.bos;
    SequenceKv seq;
    EXPECT_TRUE(seq.reserve(kv, o.ctx));
    const BatchSequence piece{window, 0, &seq.blocks, true};
    const std::span<const float> logits = runner.forward(std::span(&piece, 1));
    out.insert(out.end(), logits.begin(), logits.end());
    seq.release_all(kv);
  }
  return out;
}

TEST(MeanRowCosine, MeasuresDirectionPerRow) {
  const std::vector<float> a = {1, 0, 0, 2, 3, 4};
  const std::vector<float> same = {2, 0, 0, 4, 6, 8};
  const std::vector<float> opposite = {-1, 0, 0, -2, -3, -4};
  const std::vector<float> mixed = {0, 5, 0, 2, 3, 4};  // row 0 orthogonal, row 1 identical
  EXPECT_NEAR(mean_row_cosine(a, same, 3), 1.0, 1e-12);
  EXPECT_NEAR(mean_row_cosine(a, opposite, 3), -1.0, 1e-12);
  EXPECT_NEAR(mean_row_cosine(a, mixed, 3), 0.5, 1e-12);
  const std::vector<float> zeros(3, 0.0f), one = {0, 1, 0};
  EXPECT_EQ(mean_row_cosine(zeros, zeros, 3), 1.0);
  EXPECT_EQ(mean_row_cosine(zeros, one, 3), 0.0);
  EXPECT_THROW(mean_row_cosine(a, one, 3), InvalidArgument);
}

TEST(Importance, ScoresAreCosinesAndTheOrderIsTheGreedyLisOrder) {
  ThreadPool pool(2);
  const LlamaModel model = load_model("dummy:tiny", "", pool, test_backend());
  const int n = model.config.n_layers;
  const ImportanceOptions o = small_options(model);
  int64_t last_done = 0, last_total = 0;
  const ImportanceProfile p = profile_layer_importance(model, calibration_tokens(model), o, pool,
                                                       [&](int64_t done, int64_t total) {
                                                         EXPECT_EQ(done, last_done + 1);
                                                         last_done = done;
                                                         last_total = total;
                                                       });
  EXPECT_EQ(last_done, importance_pass_count(n, 2));
  EXPECT_EQ(last_total, last_done);
  EXPECT_EQ(p.n_windows, 2);
  EXPECT_EQ(p.n_tokens, 64);
  ASSERT_EQ(p.layers.size(), static_cast<size_t>(n));
  expect_permutation(p.order, n);
  ASSERT_EQ(p.mds_steps.size(), static_cast<size_t>(n));

  for (const LayerImportance& l : p.layers) {
    for (double v : {l.lts, l.lrs, l.mds, l.lis}) {
      EXPECT_GE(v, -1.0) << "layer " << l.layer;
      EXPECT_LE(v, 1.0) << "layer " << l.layer;
    }
    EXPECT_EQ(p.order[static_cast<size_t>(l.rank)], l.layer);
    EXPECT_NEAR(l.lis, 0.25 * l.lts + 0.25 * l.lrs + 0.5 * l.mds, 1e-12);
    EXPECT_EQ(l.mds, p.mds_steps[static_cast<size_t>(l.rank)][static_cast<size_t>(l.layer)]);
  }
  // Each step offers exactly the layers not yet picked and picks the one with the largest LIS.
  for (int s = 0; s < n; ++s) {
    const std::vector<double>& step = p.mds_steps[static_cast<size_t>(s)];
    for (int j = 0; j < n; ++j) {
      const bool picked_before =
          std::find(p.order.begin(), p.order.begin() + s, j) != p.order.begin() + s;
      EXPECT_EQ(std::isnan(step[static_cast<size_t>(j)]), picked_before) << "step " << s << " layer " << j;
      if (picked_before) continue;
      const LayerImportance& l = p.layers[static_cast<size_t>(j)];
      EXPECT_LE(0.25 * l.lts + 0.25 * l.lrs + 0.5 * step[static_cast<size_t>(j)], p.layers[static_cast<size_t>(p.order[static_cast<size_t>(s)])].lis)
          << "step " << s << " layer " << j;
    }
  }
}

TEST(Importance, W4ReplicaIsCloseButNotIdentical) {
  ThreadPool pool(2);
  const LlamaModel model = load_model("dummy:tiny", "", pool, test_backend());
  const ImportanceProfile p = profile_layer_importance(model, calibration_tokens(model), small_options(model), pool);
  for (const LayerImportance& l : p.layers) {
    EXPECT_LT(l.lrs, 1.0 - 1e-7) << "layer " << l.layer << " did not change at W4";
    EXPECT_GT(l.lrs, 0.95) << "layer " << l.layer;
    EXPECT_LT(p.mds_steps[0][static_cast<size_t>(l.layer)], 1.0 - 1e-9) << "layer " << l.layer;
    EXPECT_GT(p.mds_steps[0][static_cast<size_t>(l.layer)], 0.9) << "layer " << l.layer;
  }
}

TEST(Importance, AModelAlreadyAtW4ScoresReplicasAsIdentical) {
  ThreadPool pool(2);
  const LlamaModel model = load_model("dummy:tiny:w4", "", pool, test_backend());
  const ImportanceProfile p = profile_layer_importance(model, calibration_tokens(model), small_options(model), pool);
  for (const LayerImportance& l : p.layers) {
    EXPECT_NEAR(l.lrs, 1.0, 1e-9);
    EXPECT_NEAR(l.mds, 1.0, 1e-9);
  }
}

TEST(Importance, AnIdentityLayerIsSwappedFirst) {
  ThreadPool pool(2);
  LlamaModel model = make_dummy_model("tiny", DType::F32, test_backend());
  // With no attention output and no feed-forward output the layer adds nothing to the residual
  // stream: its output equals its input, and quantizing it cannot change anything.
  constexpr int kIdentity = 2;
  LayerWeights& layer = model.weights.layers[kIdentity];
  std::memset(layer.wo.data.data(), 0, layer.wo.bytes());
  std::memset(layer.w_down.data.data(), 0, layer.w_down.bytes());
  const ImportanceProfile p = profile_layer_importance(model, calibration_tokens(model), small_options(model), pool);
  EXPECT_NEAR(p.layers[kIdentity].lts, 1.0, 1e-6);
  EXPECT_NEAR(p.layers[kIdentity].lrs, 1.0, 1e-6);
  EXPECT_NEAR(p.layers[kIdentity].mds, 1.0, 1e-6);
  EXPECT_EQ(p.order.front(), kIdentity);
  for (const LayerImportance& l : p.layers) {
    if (l.layer != kIdentity) {
      EXPECT_LT(l.lts, p.layers[kIdentity].lts - 1e-3) << "layer " << l.layer;
    }
  }
}

TEST(Importance, MdsComparesAgainstTheModelWithTheAlreadyPickedLayersQuantized) {
  ThreadPool pool(2);
  const LlamaModel model = load_model("dummy:tiny", "", pool, test_backend());
  const std::vector<int32_t> tokens = calibration_tokens(model);
  ImportanceOptions o = small_options(model);
  o.batch = o.ctx;  // one pass per window, as below, so both sides round identically
  const ImportanceProfile p = profile_layer_importance(model, tokens, o, pool);
  const int vocab = model.config.vocab_size;

  const std::vector<float> full = all_window_logits(model, tokens, o);
  const int first = p.order[0];
  const LlamaModel q1 = load_model("dummy:tiny", std::to_string(first) + ":w4", pool, test_backend());
  const std::vector<float> q1_logits = all_window_logits(q1, tokens, o);
  // Step 0: against full precision.
  EXPECT_NEAR(p.mds_steps[0][static_cast<size_t>(first)], mean_row_cosine(full, q1_logits, vocab), 1e-9);
  // Step 1: against the model with the first pick quantized, not against full precision.
  for (int j = 0; j < model.config.n_layers; ++j) {
    if (j == first) continue;
    const LlamaModel q2 = load_model("dummy:tiny", std::to_string(first) + ":w4," + std::to_string(j) + ":w4", pool, test_backend());
    const std::vector<float> q2_logits = all_window_logits(q2, tokens, o);
    const double against_q = mean_row_cosine(q1_logits, q2_logits, vocab);
    const double against_full = mean_row_cosine(full, q2_logits, vocab);
    EXPECT_NEAR(p.mds_steps[1][static_cast<size_t>(j)], against_q, 1e-9) << "layer " << j;
    EXPECT_GT(std::abs(against_q - against_full), 1e-6) << "the test cannot tell the baselines apart";
  }
}

TEST(Importance, RejectsCalibrationShorterThanOneWindow) {
  ThreadPool pool(1);
  const LlamaModel model = load_model("dummy:tiny", "", pool, test_backend());
  ImportanceOptions o = small_options(model);
  const std::vector<int32_t> tokens(31, 5);
  EXPECT_THROW(profile_layer_importance(model, tokens, o, pool), InvalidArgument);
  o.ctx = model.config.context_length + 1;
  const std::vector<int32_t> long_tokens(static_cast<size_t>(o.ctx), 5);
  EXPECT_THROW(profile_layer_importance(model, long_tokens, o, pool), InvalidArgument);
}

TEST(Importance, Stories260KProfile) {
  MORPHSERVE_REQUIRE_DATA(model_path, "models/stories260K.gguf");
  MORPHSERVE_REQUIRE_DATA(text_path, "text/tinystories_val.txt");
  ThreadPool pool(0);
  const LlamaModel model = load_model(model_path.string(), "", pool, test_backend());
  std::ifstream in(text_path);
  std::stringstream text;
  text << in.rdbuf();
  const std::vector<int32_t> tokens = model.tokenizer.encode(text.str(), true);
  ImportanceOptions o;
  o.max_tokens = 512;
  o.bos = model.tokenizer.bos();
  const ImportanceProfile p = profile_layer_importance(model, tokens, o, pool);
  EXPECT_EQ(p.n_tokens, 512);
  expect_permutation(p.order, model.config.n_layers);
  for (const LayerImportance& l : p.layers) {
    EXPECT_GT(l.lts, 0.0) << "layer " << l.layer;  // a residual layer keeps most of its input
    EXPECT_LT(l.lts, 1.0) << "layer " << l.layer;
    EXPECT_LT(l.lrs, 1.0 - 1e-7) << "layer " << l.layer;
    EXPECT_GT(l.lrs, 0.95) << "layer " << l.layer;
    EXPECT_GT(l.mds, 0.9) << "layer " << l.layer;
    EXPECT_LE(l.mds, 1.0) << "layer " << l.layer;
  }
}

}  // namespace
}  // namespace morphserve
