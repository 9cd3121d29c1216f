// StreamDecoder: the text it streams equals decode() of the same ids, and it never emits part
// of a character.
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "model/gguf_file.h"
#include "model/tokenizer.h"
#include "test_data.h"

namespace morphserve {
namespace {

constexpr const char* kReplacement = "\xEF\xBF\xBD";

// Streams ids one at a time; returns each push's output, with flush()'s as the last element.
std::vector<std::string> stream(const Tokenizer& t, const std::vector<int32_t>& ids, bool strip = true) {
  StreamDecoder decoder(t, strip);
  std::vector<std::string> chunks;
  for (const int32_t id : ids) chunks.push_back(decoder.push(id));
  chunks.push_back(decoder.flush());
  return chunks;
}

std::string joined(const std::vector<std::string>& chunks) {
  std::string all;
  for (const auto& c : chunks) all += c;
  return all;
}

int32_t byte_token(const Tokenizer& t, int byte) { return t.piece_id(fmt::format("<0x{:02X}>", byte)); }

class TokenizerStream : public ::testing::Test {
 protected:
  void SetUp() override {
    MORPHSERVE_REQUIRE_DATA(model, "models/stories260K.gguf");
    tokenizer_ = std::make_unique<Tokenizer>(vocab_from_gguf(GgufFile::open(model.string())));
  }
  const Tokenizer& t() const { return *tokenizer_; }
  std::unique_ptr<Tokenizer> tokenizer_;
};

TEST_F(TokenizerStream, MatchesDecode) {
  const std::vector<std::string> texts = {
      "Once upon a time, there was a little girl.\nShe said \"hi\".",
      "  two leading spaces and trailing  ",
      "caf\xC3\xA9 \xF0\x9F\x99\x82 \xE6\x97\xA5\xE6\x9C\xAC",
      "",
  };
  for (const std::string& text : texts) {
    for (const bool add_special : {false, true}) {
      const std::vector<int32_t> ids = t().encode(text, add_special);
      EXPECT_EQ(joined(stream(t(), ids)), t().decode(ids)) << text;
      EXPECT_EQ(joined(stream(t(), ids, false)), t().decode(ids, false)) << text;
      EXPECT_EQ(joined(stream(t(), ids)), text);
    }
  }
}

TEST_F(TokenizerStream, FourByteEmojiIsEmittedOnlyWhenComplete) {
  const std::vector<int32_t> ids = t().encode("a \xF0\x9F\x99\x82!", true);
  // BOS, "▁a", "▁", then the emoji's four byte tokens, then "!".
  ASSERT_EQ(ids.size(), 8u);
  ASSERT_EQ(ids[3], byte_token(t(), 0xF0));
  const std::vector<std::string> chunks = stream(t(), ids);
  EXPECT_EQ(chunks, (std::vector<std::string>{"", "a", " ", "", "", "", "\xF0\x9F\x99\x82", "!", ""}));
}

TEST_F(TokenizerStream, InvalidBytesBecomeReplacementCharacters) {
  // A byte that can never start a character comes out at once.
  EXPECT_EQ(stream(t(), {byte_token(t(), 0xFF)}), (std::vector<std::string>{kReplacement, ""}));
  // A character cut short by a byte that cannot continue it: one U+FFFD for the cut prefix.
  EXPECT_EQ(stream(t(), {byte_token(t(), 0xF0), byte_token(t(), 0x9F), byte_token(t(), 'A')}),
            (std::vector<std::string>{"", "", std::string(kReplacement) + "A", ""}));
  // A character still unfinished at the end: flush gives it up as U+FFFD.
  EXPECT_EQ(stream(t(), {byte_token(t(), 'x'), byte_token(t(), 0xE2), byte_token(t(), 0x82)}),
            (std::vector<std::string>{"x", "", "", kReplacement}));
  // decode() agrees.
  EXPECT_EQ(t().decode(std::vector<int32_t>{byte_token(t(), 'x'), byte_token(t(), 0xE2), byte_token(t(), 0x82)}),
            std::string("x") + kReplacement);
  EXPECT_EQ(t().decode(std::vector<int32_t>{byte_token(t(), 0xC0), byte_token(t(), 0x80)}),
            std::string(kReplacement) + kReplacement);
}

TEST_F(TokenizerStream, SpecialTokensProduceNothing) {
  const int32_t the = t().piece_id("\xE2\x96\x81the");
  EXPECT_EQ(stream(t(), {1, the, 2, the}), (std::vector<std::string>{"", "the", "", " the", ""}));
}

TEST_F(TokenizerStream, FlushMidStreamKeepsGoing) {
  const int32_t the = t().piece_id("\xE2\x96\x81the");
  StreamDecoder decoder(t());
  EXPECT_EQ(decoder.push(the), "the");
  EXPECT_EQ(decoder.push(byte_token(t(), 0xC3)), "");
  EXPECT_EQ(decoder.flush(), kReplacement);
  EXPECT_EQ(decoder.push(the), " the");  // not stripped again
  EXPECT_EQ(decoder.flush(), "");
}

}  // namespace
}  // namespace morphserve
