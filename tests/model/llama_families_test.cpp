// Llama 3 and Qwen2 specifics in the GGUF loader: what the writer puts in a file comes back
// (architecture, NEOX RoPE, biases, rope_freqs, tied embeddings), and what morphserve cannot run
// is refused with one sentence.
#include <string>

#include <gtest/gtest.h>

#include "core/error.h"
#include "model/dummy_model.h"
#include "model/gguf_file.h"
#include "model/gguf_test_support.h"
#include "model/gguf_writer.h"
#include "model/llama_gguf_writer.h"
#include "model/rope_scaling.h"
#include "test_backend.h"

namespace morphserve {
namespace {

using ::morphserve::testing::TempDir;

void expect_same_vector(const std::vector<float>& a, const std::vector<float>& b, const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << what << "[" << i << "]";
}

TEST(LlamaFamilies, Qwen2FileKeepsArchitectureBiasesAndNeoxRope) {
  TempDir dir;
  const LlamaModel original = make_dummy_model("qwen2-tiny", DType::F16, test_backend());
  write_llama_gguf(original, dir.file("qwen2.gguf"));
  const LlamaModel loaded = load_llama_gguf(dir.file("qwen2.gguf"), test_backend());
  EXPECT_EQ(loaded.config.arch, Architecture::Qwen2);
  EXPECT_TRUE(loaded.config.rope_neox);
  EXPECT_TRUE(loaded.config.tied_output);
  EXPECT_TRUE(loaded.weights.output.empty());
  EXPECT_FLOAT_EQ(loaded.config.rope_freq_base, 1e6f);
  EXPECT_FLOAT_EQ(loaded.config.rms_eps, 1e-6f);
  EXPECT_EQ(loaded.config.vocab_size, 151936);
  for (size_t l = 0; l < original.weights.layers.size(); ++l) {
    const LayerWeights& a = original.weights.layers[l];
    const LayerWeights& b = loaded.weights.layers[l];
    ASSERT_EQ(b.bq.size(), static_cast<size_t>(loaded.config.q_dim()));
    expect_same_vector(a.bq, b.bq, "bq");
    expect_same_vector(a.bk, b.bk, "bk");
    expect_same_vector(a.bv, b.bv, "bv");
    expect_same_vector(a.attn_norm, b.attn_norm, "attn_norm");
    EXPECT_TRUE(b.bo.empty());
  }
}

TEST(LlamaFamilies, Llama3FileKeepsRopeFreqsAndGqa) {
  TempDir dir;
  const LlamaModel original = make_dummy_model("llama3-tiny", DType::F16, test_backend());
  write_llama_gguf(original, dir.file("llama3.gguf"));
  const LlamaModel loaded = load_llama_gguf(dir.file("llama3.gguf"), test_backend());
  EXPECT_EQ(loaded.config.arch, Architecture::Llama);
  EXPECT_FALSE(loaded.config.rope_neox);
  EXPECT_EQ(loaded.config.n_kv_heads, 2);
  EXPECT_EQ(loaded.config.vocab_size, 128256);
  EXPECT_FLOAT_EQ(loaded.config.rope_freq_base, 500000.0f);
  expect_same_vector(original.weights.rope_freqs, loaded.weights.rope_freqs, "rope_freqs");
  EXPECT_TRUE(loaded.weights.layers[0].bq.empty());
}

TEST(LlamaFamilies, Llama3FactorsFollowMetasFormula) {
  // Llama 3.2's settings at head_dim 64, base 500000: the highest frequencies are untouched, the
  // lowest divided by 32, and the ones between decrease monotonically.
  const auto f = llama3_rope_freq_factors({}, 500000.0, 64);
  ASSERT_EQ(f.size(), 32u);
  EXPECT_FLOAT_EQ(f.front(), 1.0f);
  EXPECT_FLOAT_EQ(f.back(), 32.0f);
  for (size_t i = 1; i < f.size(); ++i) EXPECT_GE(f[i], f[i - 1]) << i;
}

// A file like `base` but with one metadata value changed.
std::string rewrite(const TempDir& dir, const LlamaModel& base, const std::string& key, GgufValue value) {
  const std::string plain = dir.file("plain.gguf");
  write_llama_gguf(base, plain);
  const GgufFile in = GgufFile::open(plain);
  GgufWriter writer;
  for (const auto& [k, v] : in.metadata()) {
    if (k != "general.alignment") writer.set(k, k == key ? value : v);
  }
  if (!in.find(key)) writer.set(key, value);
  for (const GgufTensorInfo& t : in.tensors()) writer.add_tensor(t.name, t.dims, t.type, t.data, t.bytes);
  const std::string out = dir.file("changed.gguf");
  writer.write(out);
  return out;
}

void expect_refused(const std::string& path, const std::string& sentence) {
  try {
    load_llama_gguf(path, test_backend());
    ADD_FAILURE() << "loaded " << path;
  } catch (const ModelFileError& e) {
    EXPECT_NE(std::string(e.what()).find(sentence), std::string::npos) << e.what();
  }
}

TEST(LlamaFamilies, RefusesWhatItCannotRun) {
  TempDir dir;
  const LlamaModel tiny = make_dummy_model("tiny", DType::F16, test_backend());
  expect_refused(rewrite(dir, tiny, "general.architecture", GgufValue::string("gemma2")),
                 "architecture 'gemma2'; morphserve serves 'llama' (Llama, Mistral) and 'qwen2'");
  expect_refused(rewrite(dir, tiny, "llama.rope.scaling.type", GgufValue::string("yarn")), "rope scaling 'yarn'");
}

TEST(LlamaFamilies, RefusesAQwen2FileWithoutItsBiases) {
  TempDir dir;
  LlamaModel qwen = make_dummy_model("qwen2-tiny", DType::F16, test_backend());
  qwen.weights.layers[1].bk.clear();
  write_llama_gguf(qwen, dir.file("nobias.gguf"));
  expect_refused(dir.file("nobias.gguf"), "blk.1.attn_k.bias");
}

TEST(LlamaFamilies, RefusesNonPositiveRopeFactors) {
  TempDir dir;
  LlamaModel llama3 = make_dummy_model("llama3-tiny", DType::F16, test_backend());
  llama3.weights.rope_freqs[3] = 0.0f;
  write_llama_gguf(llama3, dir.file("badfreqs.gguf"));
  expect_refused(dir.file("badfreqs.gguf"), "rope_freqs.weight holds 0");
}

}  // namespace
}  // namespace morphserve
