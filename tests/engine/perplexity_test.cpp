#include "engine/perplexity.h"

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include <gtest/gtest.h>

#include "core/error.h"
#include "engine/kv_block_pool.h"
#include "engine/llama_runner.h"
#include "engine/model_loader.h"
#include "kernels/thread_pool.h"
#include "test_data.h"
#include "test_backend.h"

namespace morphserve {
namespace {

double stories_perplexity(const std::filesystem::path& model_path, const std::string& text,
                          const std::string& precision, int64_t max_tokens) {
  ThreadPool pool(0);
  const LlamaModel model = load_model(model_path.string(), precision, pool, test_backend());
  KvBlockPool kv(KvLayout{model.config.n_layers, 16, model.config.kv_dim(), DType::F32}, 32, test_backend());
  LlamaRunner runner(model, kv, test_backend(), 256);  // two passes per 512-token window
  const auto tokens = model.tokenizer.encode(text, true);
  const PerplexityResult r = evaluate_perplexity(runner, kv, tokens, model.tokenizer.bos(), {512, max_tokens});
  EXPECT_EQ(r.n_windows, max_tokens / 512);
  EXPECT_EQ(r.n_scored, r.n_windows * 255);
  EXPECT_EQ(kv.used_blocks(), 0);
  return r.perplexity;
}

TEST(Perplexity, Stories260KMatchesLlamaCppAndW8StaysWithinOnePercent) {
  MORPHSERVE_REQUIRE_DATA(model_path, "models/stories260K.gguf");
  MORPHSERVE_REQUIRE_DATA(text_path, "text/tinystories_val.txt");
  std::ifstream in(text_path);
  std::stringstream text;
  text << in.rdbuf();
  const double f32 = stories_perplexity(model_path, text.str(), "", 65536);
  // llama.cpp's llama-perplexity on the same file, ctx 512, 128 chunks: 3.8913 (REFERENCE.md).
  EXPECT_NEAR(f32, 3.8913, 0.002);
  const double w8 = stories_perplexity(model_path, text.str(), "all:w8", 65536);
  EXPECT_LT(std::abs(w8 - f32) / f32, 0.01) << "f32 " << f32 << " w8 " << w8;
  const double w4 = stories_perplexity(model_path, text.str(), "all:w4", 65536);
  EXPECT_GT(w4, w8);
  std::printf("stories260K ppl (64K tokens, ctx 512): f32 %.4f  w8 %.4f  w4 %.4f\n", f32, w8, w4);
}

TEST(Perplexity, RejectsTextShorterThanOneWindow) {
  ThreadPool pool(1);
  const LlamaModel model = load_model("dummy:tiny", "", pool, test_backend());
  KvBlockPool kv(KvLayout{model.config.n_layers, 16, model.config.kv_dim(), DType::F32}, 8, test_backend());
  LlamaRunner runner(model, kv, test_backend(), 64);
  const std::vector<int32_t> tokens(40, 5);
  EXPECT_THROW(evaluate_perplexity(runner, kv, tokens, 1, {64, 0}), InvalidArgument);
  EXPECT_THROW(evaluate_perplexity(runner, kv, tokens, 1, {2, 0}), InvalidArgument);
}

}  // namespace
}  // namespace morphserve
