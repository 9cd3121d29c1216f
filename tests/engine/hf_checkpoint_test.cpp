// Hugging Face checkpoints through the same engine: a model written as GGUF and as a sharded
// safetensors checkpoint computes the same logits and tokenizes the same way from both (the
// Llama Q/K permutation undone, biases, rope_freqs as config.json's llama3 scaling), and broken
// checkpoints are refused with one sentence.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "engine/kv_block_pool.h"
#include "engine/llama_runner.h"
#include "engine/model_loader.h"
#include "kernels/thread_pool.h"
#include "model/dummy_model.h"
#include "model/gguf_test_support.h"
#include "model/hf_checkpoint.h"
#include "model/llama_gguf_writer.h"
#include "test_backend.h"

namespace morphserve {
namespace {

namespace fs = std::filesystem;
using ::morphserve::testing::TempDir;

std::vector<float> all_logits(const LlamaModel& model, const std::vector<int32_t>& tokens) {
  KvBlockPool kv(KvLayout{model.config.n_layers, 16, model.config.kv_dim(), DType::F32},
                 static_cast<int64_t>(tokens.size()) / 16 + 2, test_backend());
  LlamaRunner runner(model, kv, test_backend(), static_cast<int64_t>(tokens.size()));
  SequenceKv seq;
  EXPECT_TRUE(seq.reserve(kv, static_cast<int64_t>(tokens.size())));
  const BatchSequence batch{tokens, 0, &seq.blocks, true};
  const auto logits = runner.forward(std::span(&batch, 1));
  std::vector<float> out(logits.begin(), logits.end());
  seq.release_all(kv);
  return out;
}

class HfCheckpointRoundTrip : public ::testing::TestWithParam<const char*> {
 protected:
  ThreadPool pool_{2};
};

TEST_P(HfCheckpointRoundTrip, SameLogitsAndTokensAsTheGgufFile) {
  TempDir dir;
  const std::string gguf = dir.file("model.gguf");
  write_llama_gguf(make_dummy_model(GetParam(), DType::F16, test_backend()), gguf);
  const LlamaModel from_gguf = load_model(gguf, "", pool_, test_backend());
  const std::string ckpt = dir.file("checkpoint");
  // Small shards, so the index and several files are exercised.
  write_hf_checkpoint(from_gguf, ckpt, 256u << 10);
  ASSERT_TRUE(fs::exists(fs::path(ckpt) / "model.safetensors.index.json"));
  int shards = 0;
  for (const auto& entry : fs::directory_iterator(ckpt)) shards += entry.path().extension() == ".safetensors";
  EXPECT_GE(shards, 2);
  ASSERT_TRUE(is_hf_checkpoint(ckpt));
  const LlamaModel from_hf = load_model(ckpt, "", pool_, test_backend());

  EXPECT_EQ(from_hf.config.arch, from_gguf.config.arch);
  EXPECT_TRUE(from_hf.config.rope_neox);
  EXPECT_EQ(from_hf.config.vocab_size, from_gguf.config.vocab_size);
  EXPECT_EQ(from_hf.weights.rope_freqs, from_gguf.weights.rope_freqs);
  EXPECT_EQ(from_hf.chat_template, from_gguf.chat_template);

  const std::string text = "Hello there, the winner is 12345 in 2024!\n  ok";
  EXPECT_EQ(from_hf.tokenizer.encode(text, true), from_gguf.tokenizer.encode(text, true));
  EXPECT_EQ(from_hf.tokenizer.eos(), from_gguf.tokenizer.eos());

  const std::vector<int32_t> tokens = {1, 300, 17, 42, 99, 123, 77, 200, 250, 5, 8, 150, 31, 64};
  const auto a = all_logits(from_gguf, tokens);
  const auto b = all_logits(from_hf, tokens);
  ASSERT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, static_cast<double>(std::abs(a[i] - b[i])));
  // Same weights; only the order of the head dimensions (and so of float sums) differs.
  EXPECT_LT(worst, 2e-3) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Shapes, HfCheckpointRoundTrip, ::testing::Values("tiny", "llama3-tiny", "qwen2-tiny", "mistral-tiny"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

void expect_refused(const std::string& dir, const std::string& sentence) {
  ThreadPool pool(1);
  try {
    load_model(dir, "", pool, test_backend());
    ADD_FAILURE() << "loaded " << dir;
  } catch (const ModelFileError& e) {
    EXPECT_NE(std::string(e.what()).find(sentence), std::string::npos) << e.what();
  }
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

TEST(HfCheckpoint, RefusesBrokenCheckpoints) {
  TempDir dir;
  const std::string ckpt = dir.file("ckpt");
  write_hf_checkpoint(make_dummy_model("tiny", DType::F16, test_backend()), ckpt, 1ull << 40);
  const fs::path shard = fs::path(ckpt) / "model-00001-of-00001.safetensors";
  ASSERT_TRUE(fs::exists(shard));
  const std::string good = read_file(shard);

  // A header whose offsets point past the data.
  std::string lying = good;
  const size_t at = lying.find("\"data_offsets\":[0,");
  ASSERT_NE(at, std::string::npos);
  lying.replace(at, 18, "\"data_offsets\":[9,");
  write_file(shard, lying);
  expect_refused(ckpt, "safetensors");

  // Truncated data.
  write_file(shard, good.substr(0, good.size() - 100));
  expect_refused(ckpt, "safetensors");
  write_file(shard, good);

  // An architecture morphserve does not run.
  const fs::path config = fs::path(ckpt) / "config.json";
  const std::string config_text = read_file(config);
  std::string other = config_text;
  other.replace(other.find("LlamaForCausalLM"), 16, "GemmaForCausalLM");
  write_file(config, other);
  expect_refused(ckpt, "GemmaForCausalLM");
  write_file(config, config_text);

  // No tokenizer.
  fs::remove(fs::path(ckpt) / "tokenizer.json");
  expect_refused(ckpt, "has no tokenizer.json");
}

// A Mistral checkpoint is a Llama one under its own class name with a sliding window: within the
// window the same logits, and the served context is the window (v0.1's 4096 of 32768).
TEST(HfCheckpoint, MistralLoadsAsLlamaWithItsWindowAsTheContext) {
  ThreadPool pool(2);
  TempDir dir;
  const std::string ckpt = dir.file("mistral");
  const LlamaModel llama = make_dummy_model("mistral-tiny", DType::F16, test_backend());
  write_hf_checkpoint(llama, ckpt, 1ull << 40);
  const fs::path config = fs::path(ckpt) / "config.json";
  std::string text = read_file(config);
  text.replace(text.find("LlamaForCausalLM"), 16, "MistralForCausalLM");
  text.replace(text.find("\"model_type\": \"llama\""), 21, "\"model_type\": \"mistral\", \"sliding_window\": 4096");
  write_file(config, text);

  const LlamaModel mistral = load_model(ckpt, "", pool, test_backend());
  EXPECT_EQ(mistral.config.context_length, 4096);
  EXPECT_EQ(mistral.config.n_kv_heads * 4, mistral.config.n_heads);
  const std::vector<int32_t> tokens = {1, 300, 17, 42, 99, 123, 77, 200};
  const auto a = all_logits(llama, tokens);
  const auto b = all_logits(mistral, tokens);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 2e-3) << i;

  // A null window (v0.2 and later) leaves the whole context.
  text.replace(text.find("\"sliding_window\": 4096"), 22, "\"sliding_window\": null");
  write_file(config, text);
  EXPECT_EQ(load_model(ckpt, "", pool, test_backend()).config.context_length, llama.config.context_length);
}

TEST(HfCheckpoint, QuantizedWeightsCannotBeWritten) {
  ThreadPool pool(1);
  const LlamaModel w4 = load_model("dummy:tiny:w4", "", pool, test_backend());
  TempDir dir;
  EXPECT_THROW(write_hf_checkpoint(w4, dir.file("out")), InvalidArgument);
}

}  // namespace
}  // namespace morphserve
