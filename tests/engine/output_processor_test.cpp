// OutputProcessor: the text a request's tokens release, and where the request ends.
#include "engine/output_processor.h"

#include <gtest/gtest.h>

#include "engine/model_loader.h"
#include "kernels/thread_pool.h"
#include "model/tokenizer.h"
#include "test_backend.h"

namespace morphserve {
namespace {

class OutputProcessorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    static ThreadPool pool(1);
    model_ = new LlamaModel(load_model("dummy:tiny", "", pool, test_backend()));
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }
  const Tokenizer& tokenizer() const { return model_->tokenizer; }
  std::vector<int32_t> tokens(const std::string& text) const { return tokenizer().encode(text, false, false); }

  static LlamaModel* model_;
};
LlamaModel* OutputProcessorTest::model_ = nullptr;

TEST_F(OutputProcessorTest, ReleasesTheWholeTextAndEndsAtMaxTokens) {
  const std::vector<int32_t> ids = tokens("Hello there, world");
  ASSERT_GT(ids.size(), 2u);
  RequestParams params;
  params.max_tokens = static_cast<int64_t>(ids.size());
  OutputProcessor out(tokenizer(), params);
  std::string text;
  for (size_t i = 0; i < ids.size(); ++i) {
    const OutputProcessor::Released r = out.push(ids[i], static_cast<int64_t>(i + 1));
    text += r.text;
    if (i + 1 < ids.size()) {
      EXPECT_FALSE(r.finish) << i;
    } else {
      EXPECT_EQ(r.finish, FinishReason::Length);
    }
  }
  // dummy:tiny's tokenizer is SentencePiece's, which encodes the text with a leading space; a
  // completion keeps it (the engine does not strip it, as llama.cpp's server does not).
  EXPECT_EQ(text, " Hello there, world");
}

TEST_F(OutputProcessorTest, StopsBeforeAStopStringAndKeepsItOut) {
  const std::vector<int32_t> ids = tokens("one two three four");
  RequestParams params;
  params.max_tokens = 100;
  params.stop = {" three"};
  OutputProcessor out(tokenizer(), params);
  std::string text;
  std::optional<FinishReason> finish;
  for (size_t i = 0; i < ids.size() && !finish; ++i) {
    const OutputProcessor::Released r = out.push(ids[i], static_cast<int64_t>(i + 1));
    text += r.text;
    finish = r.finish;
  }
  EXPECT_EQ(finish, FinishReason::Stop);
  EXPECT_EQ(text, " one two");
}

TEST_F(OutputProcessorTest, EndOfGenerationEndsUnlessIgnored) {
  const std::vector<int32_t> ids = tokens("hi");
  const int32_t eos = tokenizer().eos();
  ASSERT_TRUE(tokenizer().is_end_of_generation(eos));
  for (const bool ignore : {false, true}) {
    RequestParams params;
    params.max_tokens = 100;
    params.ignore_eos = ignore;
    OutputProcessor out(tokenizer(), params);
    std::string text;
    for (size_t i = 0; i < ids.size(); ++i) text += out.push(ids[i], static_cast<int64_t>(i + 1)).text;
    const OutputProcessor::Released r = out.push(eos, static_cast<int64_t>(ids.size() + 1));
    text += r.text;
    if (ignore) {
      EXPECT_FALSE(r.finish);
    } else {
      EXPECT_EQ(r.finish, FinishReason::Stop);
      EXPECT_EQ(text, " hi") << "the text held back is released, the end token is not text";
    }
  }
}

}  // namespace
}  // namespace morphserve
