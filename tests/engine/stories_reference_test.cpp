// The real model: stories260K must reproduce llama2.c's greedy output token for token and the
// float64 reference logits, through the same runner the server uses.
#include <fstream>
#include <memory>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/generation.h"
#include "engine/kv_block_pool.h"
#include "engine/llama_runner.h"
#include "engine/model_loader.h"
#include "kernels/thread_pool.h"
#include "test_data.h"
#include "test_backend.h"

namespace morphserve {
namespace {

nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

struct Loaded {
  ThreadPool pool{0};
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<KvBlockPool> kv;
};

std::unique_ptr<Loaded> load(const std::filesystem::path& path, const std::string& precision, DType kv_type) {
  auto l = std::make_unique<Loaded>();
  l->model = std::make_unique<LlamaModel>(load_model(path.string(), precision, l->pool, test_backend()));
  l->kv = std::make_unique<KvBlockPool>(KvLayout{l->model->config.n_layers, 16, l->model->config.kv_dim(), kv_type}, 64, test_backend());
  return l;
}

std::vector<int32_t> greedy(Loaded& l, const std::vector<int32_t>& prompt, int64_t n, int64_t batch) {
  LlamaRunner runner(*l.model, *l.kv, test_backend(), batch);
  std::vector<int32_t> out;
  GenerationOptions options;
  options.max_new_tokens = n;
  generate_tokens(runner, *l.kv, prompt, options, [&](int32_t t) {
    out.push_back(t);
    return true;
  });
  EXPECT_EQ(l.kv->used_blocks(), 0);
  return out;
}

TEST(StoriesReference, GreedyGenerationMatchesLlama2cForEveryCase) {
  MORPHSERVE_REQUIRE_DATA(model_path, "models/stories260K.gguf");
  MORPHSERVE_REQUIRE_DATA(ref_path, "models/reference/stories260K.greedy.json");
  const nlohmann::json ref = read_json(ref_path);
  auto l = load(model_path, "", DType::F32);
  ASSERT_EQ(ref["cases"].size(), 4u);
  for (const auto& c : ref["cases"]) {
    const auto prompt = c["prompt_ids"].get<std::vector<int32_t>>();
    const auto expected = c["generated_ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(l->model->tokenizer.encode(c["prompt"].get<std::string>(), true), prompt);
    EXPECT_EQ(greedy(*l, prompt, static_cast<int64_t>(expected.size()), 512), expected) << c["prompt"];
    // Prefill in uneven chunks (3 tokens per pass) must not change a single token.
    EXPECT_EQ(greedy(*l, prompt, static_cast<int64_t>(expected.size()), 3), expected) << c["prompt"];
  }
}

TEST(StoriesReference, GreedyTextDecodesToTheReference) {
  MORPHSERVE_REQUIRE_DATA(model_path, "models/stories260K.gguf");
  MORPHSERVE_REQUIRE_DATA(ref_path, "models/reference/stories260K.greedy.json");
  const nlohmann::json ref = read_json(ref_path);
  auto l = load(model_path, "", DType::F16);
  const auto& c = ref["cases"][1];
  const auto prompt = c["prompt_ids"].get<std::vector<int32_t>>();
  const auto expected = c["generated_ids"].get<std::vector<int32_t>>();
  // With an f16 KV cache the text still matches for this prompt (a loose but real check that the
  // f16 cache path is wired correctly).
  std::vector<int32_t> all = prompt;
  const auto generated = greedy(*l, prompt, static_cast<int64_t>(expected.size()), 512);
  all.insert(all.end(), generated.begin(), generated.end());
  EXPECT_EQ(l->model->tokenizer.decode(all), c["text"].get<std::string>());
}

TEST(StoriesReference, LogitsMatchTheFloat64Reference) {
  MORPHSERVE_REQUIRE_DATA(model_path, "models/stories260K.gguf");
  MORPHSERVE_REQUIRE_DATA(ref_path, "models/reference/stories260K.greedy.json");
  MORPHSERVE_REQUIRE_DATA(logits_path, "models/reference/stories260K.logits.f32");
  const nlohmann::json ref = read_json(ref_path);
  const auto ids = ref["logits_reference"]["token_ids"].get<std::vector<int32_t>>();
  std::vector<float> expected(ids.size() * 512);
  std::ifstream in(logits_path, std::ios::binary);
  in.read(reinterpret_cast<char*>(expected.data()), static_cast<std::streamsize>(expected.size() * sizeof(float)));
  ASSERT_TRUE(in);

  auto l = load(model_path, "", DType::F32);
  SequenceKv seq;
  ASSERT_TRUE(seq.reserve(*l->kv, static_cast<int64_t>(ids.size())));
  for (int64_t batch : {64, 5}) {  // one pass, and chunked prefill
    LlamaRunner runner(*l->model, *l->kv, test_backend(), batch);
    double max_error = 0.0;
    for (size_t start = 0; start < ids.size(); start += static_cast<size_t>(batch)) {
      const size_t n = std::min<size_t>(static_cast<size_t>(batch), ids.size() - start);
      const BatchSequence piece{std::span(ids).subspan(start, n), static_cast<int64_t>(start), &seq.blocks, true};
      const auto logits = runner.forward(std::span(&piece, 1));
      for (size_t i = 0; i < n * 512; ++i) {
        max_error = std::max(max_error, static_cast<double>(std::abs(logits[i] - expected[start * 512 + i])));
      }
    }
    EXPECT_LT(max_error, 1e-4) << "batch " << batch;
  }
  seq.release_all(*l->kv);
}

TEST(StoriesReference, QuantizedLayersStillProduceTheStory) {
  MORPHSERVE_REQUIRE_DATA(model_path, "models/stories260K.gguf");
  MORPHSERVE_REQUIRE_DATA(ref_path, "models/reference/stories260K.greedy.json");
  const nlohmann::json ref = read_json(ref_path);
  const auto& c = ref["cases"][1];
  const auto prompt = c["prompt_ids"].get<std::vector<int32_t>>();
  const auto expected = c["generated_ids"].get<std::vector<int32_t>>();
  auto l = load(model_path, "all:w8", DType::F32);
  for (const LayerWeights& layer : l->model->weights.layers) {
    EXPECT_EQ(layer.wq.type, DType::Q8_0);
    EXPECT_EQ(layer.w_down.type, DType::F32);  // 172 wide: not a multiple of 32, kept as stored
  }
  const auto generated = greedy(*l, prompt, 16, 512);
  // W8 is close to F32: the first tokens of the story agree.
  EXPECT_EQ(std::vector<int32_t>(generated.begin(), generated.begin() + 8),
            std::vector<int32_t>(expected.begin(), expected.begin() + 8));
}

}  // namespace
}  // namespace morphserve
