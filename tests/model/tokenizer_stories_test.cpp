// stories260K's tok512 vocabulary against the reference generations, which llama2.c's run.c
// produced byte for byte (../shared/data/models/reference/stories260K.greedy.json).
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "model/gguf_file.h"
#include "model/gguf_test_support.h"
#include "model/tokenizer.h"
#include "test_data.h"

namespace morphserve {
namespace {

Tokenizer stories_tokenizer(const std::filesystem::path& path) {
  return Tokenizer(vocab_from_gguf(GgufFile::open(path.string())));
}

TEST(TokenizerStories, VocabMetadata) {
  MORPHSERVE_REQUIRE_DATA(model, "models/stories260K.gguf");
  const Tokenizer tokenizer = stories_tokenizer(model);
  EXPECT_EQ(tokenizer.vocab_size(), 512);
  EXPECT_EQ(tokenizer.bos(), 1);
  EXPECT_EQ(tokenizer.eos(), 2);
  EXPECT_EQ(tokenizer.unk(), 0);
  EXPECT_TRUE(tokenizer.is_control(1));
  EXPECT_TRUE(tokenizer.is_control(2));
  EXPECT_FALSE(tokenizer.is_control(0));
  EXPECT_EQ(tokenizer.type(3 + 0x41), TokenType::Byte);
  EXPECT_EQ(tokenizer.token_to_piece(3 + 0x41), "A");
  EXPECT_EQ(tokenizer.token_to_piece(1), "");
  EXPECT_EQ(tokenizer.token_to_piece(tokenizer.piece_id("\xE2\x96\x81the")), " the");
}

TEST(TokenizerStories, PromptsEncodeToReferenceIds) {
  MORPHSERVE_REQUIRE_DATA(model, "models/stories260K.gguf");
  MORPHSERVE_REQUIRE_DATA(reference, "models/reference/stories260K.greedy.json");
  const Tokenizer tokenizer = stories_tokenizer(model);
  const auto json = nlohmann::json::parse(testing::read_bytes(reference));
  ASSERT_EQ(json.at("cases").size(), 4u);
  for (const auto& test_case : json.at("cases")) {
    const auto prompt = test_case.at("prompt").get<std::string>();
    const auto expected = test_case.at("prompt_ids").get<std::vector<int32_t>>();
    EXPECT_EQ(tokenizer.encode(prompt, /*add_special=*/true), expected) << "prompt '" << prompt << "'";
  }
}

// run.c prints every piece after BOS, dropping the leading space of the first one.
TEST(TokenizerStories, GeneratedIdsDecodeToReferenceText) {
  MORPHSERVE_REQUIRE_DATA(model, "models/stories260K.gguf");
  MORPHSERVE_REQUIRE_DATA(reference, "models/reference/stories260K.greedy.json");
  const Tokenizer tokenizer = stories_tokenizer(model);
  const auto json = nlohmann::json::parse(testing::read_bytes(reference));
  for (const auto& test_case : json.at("cases")) {
    const auto prompt = test_case.at("prompt").get<std::string>();
    auto ids = test_case.at("prompt_ids").get<std::vector<int32_t>>();
    const auto generated = test_case.at("generated_ids").get<std::vector<int32_t>>();
    ids.insert(ids.end(), generated.begin(), generated.end());
    const auto text = test_case.at("text").get<std::string>();
    EXPECT_EQ(tokenizer.decode(ids), text) << "prompt '" << prompt << "'";

    // A completion's generated part continues the prompt, so its leading space stays.
    if (!prompt.empty()) {
      EXPECT_EQ(prompt + tokenizer.decode(generated, /*strip_leading_space=*/false), text);
    }

    std::string streamed;
    StreamDecoder stream(tokenizer);
    for (const int32_t id : ids) streamed += stream.push(id);
    streamed += stream.flush();
    EXPECT_EQ(streamed, text) << "prompt '" << prompt << "'";
  }
}

// A whole story file in one call: exercises long inputs (the merge loop is O(n log n)) and the
// newline byte tokens, and must read back exactly.
TEST(TokenizerStories, LongTextRoundTrips) {
  MORPHSERVE_REQUIRE_DATA(model, "models/stories260K.gguf");
  MORPHSERVE_REQUIRE_DATA(text_path, "text/tinystories_val.txt");
  const Tokenizer tokenizer = stories_tokenizer(model);
  const std::string text = testing::read_bytes(text_path);
  const auto start = std::chrono::steady_clock::now();
  const std::vector<int32_t> ids = tokenizer.encode(text, true);
  const std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - start;
  std::cout << "[ INFO     ] " << text.size() << " bytes -> " << ids.size() << " tokens in " << seconds.count() << " s\n";
  EXPECT_GT(ids.size(), text.size() / 5);
  EXPECT_LT(ids.size(), text.size() / 2);
  EXPECT_EQ(tokenizer.decode(ids), text);
}

}  // namespace
}  // namespace morphserve
