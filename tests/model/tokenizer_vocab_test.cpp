// Tokenizer edge cases on vocabularies built in code, and vocab_from_gguf's checks on GGUF
// files written for the purpose.
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "model/gguf_file.h"
#include "model/gguf_test_support.h"
#include "model/gguf_writer.h"
#include "model/tokenizer.h"

namespace morphserve {
namespace {

constexpr const char* kSpace = "\xE2\x96\x81";

struct VocabBuilder {
  Vocab vocab;
  int32_t add(std::string piece, float score = 0.0f, TokenType type = TokenType::Normal) {
    vocab.tokens.push_back(std::move(piece));
    vocab.scores.push_back(score);
    vocab.types.push_back(type);
    return static_cast<int32_t>(vocab.tokens.size()) - 1;
  }
};

// <unk> <s> </s>, optionally the 256 byte tokens, then a few pieces with distinct scores.
Vocab tiny_vocab(bool with_byte_tokens) {
  VocabBuilder b;
  b.add("<unk>", 0, TokenType::Unknown);
  b.add("<s>", 0, TokenType::Control);
  b.add("</s>", 0, TokenType::Control);
  if (with_byte_tokens) {
    for (int i = 0; i < 256; ++i) b.add(fmt::format("<0x{:02X}>", i), 0, TokenType::Byte);
  }
  b.add(kSpace, -1);
  b.add("a", -2);
  b.add("b", -3);
  b.add("c", -4);
  b.add("ab", -0.5f);
  b.add("bc", -0.25f);
  b.add("aa", -1);
  b.add(std::string(kSpace) + "a", -0.1f);
  return b.vocab;
}

std::vector<int32_t> ids_of(const Tokenizer& t, std::initializer_list<std::string> pieces) {
  std::vector<int32_t> ids;
  for (const auto& p : pieces) ids.push_back(t.piece_id(p));
  return ids;
}

TEST(TokenizerVocab, EmptyText) {
  const Tokenizer t(tiny_vocab(true));
  EXPECT_EQ(t.encode("", true), std::vector<int32_t>{1});
  EXPECT_TRUE(t.encode("", false).empty());
  EXPECT_EQ(t.decode(std::vector<int32_t>{}), "");
  Vocab with_eos = tiny_vocab(true);
  with_eos.add_eos = true;
  EXPECT_EQ(Tokenizer(with_eos).encode("", true), (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(Tokenizer(with_eos).encode("a", true), (std::vector<int32_t>{1, Tokenizer(with_eos).piece_id("\xE2\x96\x81" "a"), 2}));
}

TEST(TokenizerVocab, HigherScoreMergesFirstAndTiesGoLeft) {
  Vocab v = tiny_vocab(true);
  v.add_space_prefix = false;
  const Tokenizer t(v);
  EXPECT_EQ(t.encode("abc", false), ids_of(t, {"a", "bc"}));  // bc (-0.25) beats ab (-0.5)
  EXPECT_EQ(t.encode("aaa", false), ids_of(t, {"aa", "a"}));  // equal scores: leftmost pair
  EXPECT_EQ(t.encode("ab", false), ids_of(t, {"ab"}));
}

TEST(TokenizerVocab, UnknownCharactersWithoutByteTokensBecomeUnk) {
  const Tokenizer t(tiny_vocab(false));
  EXPECT_EQ(t.encode("z", false), (std::vector<int32_t>{t.piece_id(kSpace), 0}));
  // One unknown token per character, however many bytes it has.
  EXPECT_EQ(t.encode("a\xC3\xA9z", false), (std::vector<int32_t>{t.piece_id(std::string(kSpace) + "a"), 0, 0}));
  EXPECT_EQ(t.encode("\xFF", false), (std::vector<int32_t>{t.piece_id(kSpace), 0}));
  EXPECT_EQ(t.decode(t.encode("z", true)), "");  // unknown decodes to nothing, as in llama.cpp
}

TEST(TokenizerVocab, UnknownCharacterWithoutUnkTokenIsAnError) {
  Vocab v = tiny_vocab(false);
  v.unk = -1;
  const Tokenizer t(v);
  EXPECT_EQ(t.encode("ab", false), ids_of(t, {std::string(kSpace) + "a", "b"}));
  EXPECT_THROW(t.encode("z", false), InvalidArgument);
}

TEST(TokenizerVocab, ByteFallbackUsesUppercaseHexTokens) {
  const Tokenizer t(tiny_vocab(true));
  EXPECT_EQ(t.encode("z", false), (std::vector<int32_t>{t.piece_id(kSpace), t.piece_id("<0x7A>")}));
  EXPECT_EQ(t.encode("\xC3\xA9", false), (std::vector<int32_t>{t.piece_id(kSpace), t.piece_id("<0xC3>"), t.piece_id("<0xA9>")}));
  EXPECT_EQ(t.token_to_piece(t.piece_id("<0x7A>")), "z");
}

TEST(TokenizerVocab, TokenToPieceByType) {
  const Tokenizer t(tiny_vocab(true));
  EXPECT_EQ(t.token_to_piece(t.piece_id(kSpace)), " ");
  EXPECT_EQ(t.token_to_piece(t.piece_id(std::string(kSpace) + "a")), " a");
  EXPECT_EQ(t.token_to_piece(0), "");
  EXPECT_EQ(t.token_to_piece(1), "");
  EXPECT_EQ(t.token_to_piece(t.piece_id("<0x00>")), std::string(1, '\0'));
  EXPECT_TRUE(t.is_control(1));
  EXPECT_FALSE(t.is_control(0));
  EXPECT_THROW(t.token_to_piece(-1), InvalidArgument);
  EXPECT_THROW(t.token_to_piece(t.vocab_size()), InvalidArgument);
  EXPECT_THROW(t.decode(std::vector<int32_t>{99999}), InvalidArgument);
}

TEST(TokenizerVocab, DecodeStripsOnlyTheDummyPrefix) {
  const Tokenizer t(tiny_vocab(true));
  const int32_t space_a = t.piece_id(std::string(kSpace) + "a");
  EXPECT_EQ(t.decode(std::vector<int32_t>{1, space_a, space_a}), "a a");
  EXPECT_EQ(t.decode(std::vector<int32_t>{1, space_a, space_a}, false), " a a");
  // A byte token for ' ' is a space the text had, not the dummy prefix.
  EXPECT_EQ(t.decode(std::vector<int32_t>{t.piece_id("<0x20>"), space_a}), "  a");
  Vocab no_prefix = tiny_vocab(true);
  no_prefix.add_space_prefix = false;
  EXPECT_EQ(Tokenizer(no_prefix).decode(std::vector<int32_t>{space_a}), " a");
  EXPECT_EQ(Tokenizer(no_prefix).encode("a", false), ids_of(t, {"a"}));
}

TEST(TokenizerVocab, UserDefinedTokensAreAlwaysMatchedWhole) {
  VocabBuilder b;
  b.vocab = tiny_vocab(true);
  const int32_t tag = b.add("<tag>", 0, TokenType::UserDefined);
  const Tokenizer t(b.vocab);
  const int32_t space_a = t.piece_id(std::string(kSpace) + "a");
  // The text after a special token gets a dummy prefix of its own, as in llama.cpp.
  EXPECT_EQ(t.encode("a<tag>a", false, false), (std::vector<int32_t>{space_a, tag, space_a}));
  EXPECT_EQ(t.token_to_piece(tag), "<tag>");
  // Control tokens only with parse_special.
  EXPECT_EQ(t.encode("<s>", false, true), std::vector<int32_t>{1});
  EXPECT_NE(t.encode("<s>", false, false), std::vector<int32_t>{1});
}

TEST(TokenizerVocab, LongerSpecialTokenWins) {
  VocabBuilder b;
  b.vocab = tiny_vocab(true);
  const int32_t shorter = b.add("<x>", 0, TokenType::Control);
  const int32_t longer = b.add("<x>>", 0, TokenType::Control);
  const Tokenizer t(b.vocab);
  EXPECT_EQ(t.encode("<x>><x>", false, true), (std::vector<int32_t>{longer, shorter}));
}

TEST(TokenizerVocab, LaterDuplicatePieceWins) {
  VocabBuilder b;
  b.vocab = tiny_vocab(true);
  const int32_t second = b.add("ab", -0.5f);
  EXPECT_EQ(Tokenizer(b.vocab).piece_id("ab"), second);
}

TEST(TokenizerVocab, ConstructorRejectsUnusableVocab) {
  auto expect_rejected = [](Vocab v, const char* why) {
    EXPECT_THROW({ Tokenizer t(std::move(v)); }, InvalidArgument) << why;
  };
  expect_rejected(Vocab{}, "empty");
  Vocab v = tiny_vocab(true);
  v.scores.pop_back();
  expect_rejected(v, "scores mis-sized");
  v = tiny_vocab(true);
  v.types.push_back(TokenType::Normal);
  expect_rejected(v, "types mis-sized");
  v = tiny_vocab(true);
  v.bos = 100000;
  expect_rejected(v, "bos out of range");
  v = tiny_vocab(true);
  v.unk = -2;
  expect_rejected(v, "unk below -1");
  v = tiny_vocab(true);
  v.bos = -1;
  expect_rejected(v, "add_bos without a BOS token");
  v.add_bos = false;
  EXPECT_NO_THROW({ Tokenizer t(v); });
  v = tiny_vocab(true);
  v.tokens[3] = "<0xZZ>";
  expect_rejected(v, "byte token misspelled");
  v = tiny_vocab(true);
  v.types[3] = static_cast<TokenType>(9);
  expect_rejected(v, "unknown type");
}

// --- vocab_from_gguf ---------------------------------------------------------------------------

GgufValue strings(const std::vector<std::string>& values) {
  GgufValue::Array a;
  for (const auto& s : values) a.push_back(GgufValue::string(s));
  return GgufValue::array(GgufType::STRING, std::move(a));
}
GgufValue floats(size_t n) { return GgufValue::array(GgufType::FLOAT32, GgufValue::Array(n, GgufValue::f32(0))); }
GgufValue types(size_t n) { return GgufValue::array(GgufType::INT32, GgufValue::Array(n, GgufValue::i32(1))); }

// A vocabulary-only file with three tokens; edit lets a test change or drop keys.
class TokenizerVocabFromGguf : public ::testing::Test {
 protected:
  GgufWriter writer;
  testing::TempDir dir;

  void SetUp() override {
    writer.set("general.architecture", GgufValue::string("llama"));
    writer.set("tokenizer.ggml.model", GgufValue::string("llama"));
    writer.set("tokenizer.ggml.tokens", strings({"<unk>", "<s>", "</s>", kSpace}));
    writer.set("tokenizer.ggml.scores", floats(4));
    writer.set("tokenizer.ggml.token_type", types(4));
  }
  Vocab load() {
    const std::string path = dir.file("vocab.gguf");
    writer.write(path);
    return vocab_from_gguf(GgufFile::open(path));
  }
  std::string load_error() {
    try {
      load();
    } catch (const ModelFileError& e) {
      return e.what();
    }
    ADD_FAILURE() << "vocab_from_gguf accepted the file";
    return {};
  }
};

TEST_F(TokenizerVocabFromGguf, DefaultsFollowLlamaCpp) {
  const Vocab v = load();
  EXPECT_EQ(v.tokens.size(), 4u);
  EXPECT_EQ(v.bos, 1);
  EXPECT_EQ(v.eos, 2);
  EXPECT_EQ(v.unk, 0);
  EXPECT_TRUE(v.add_bos);
  EXPECT_FALSE(v.add_eos);
  EXPECT_TRUE(v.add_space_prefix);
}

TEST_F(TokenizerVocabFromGguf, ReadsFlagsAndIds) {
  writer.set("tokenizer.ggml.add_space_prefix", GgufValue::boolean(false));
  writer.set("tokenizer.ggml.add_eos_token", GgufValue::boolean(true));
  writer.set("tokenizer.ggml.eos_token_id", GgufValue::u32(3));
  writer.set("tokenizer.ggml.unknown_token_id", GgufValue::u32(0xFFFFFFFFu));  // unset
  const Vocab v = load();
  EXPECT_FALSE(v.add_space_prefix);
  EXPECT_TRUE(v.add_eos);
  EXPECT_EQ(v.eos, 3);
  EXPECT_EQ(v.unk, -1);
}

TEST_F(TokenizerVocabFromGguf, RejectsOtherTokenizerModels) {
  writer.set("tokenizer.ggml.model", GgufValue::string("bert"));
  const std::string error = load_error();
  EXPECT_NE(error.find("'bert'"), std::string::npos) << error;
  EXPECT_NE(error.find("SentencePiece 'llama'"), std::string::npos) << error;
  EXPECT_NE(error.find("BPE 'gpt2'"), std::string::npos) << error;
}

// A byte-level BPE vocabulary: "Ġ" (U+0120) is GPT-2's space, "a b" merges a and b.
class TokenizerBpeVocabFromGguf : public TokenizerVocabFromGguf {
 protected:
  void SetUp() override {
    writer.set("general.architecture", GgufValue::string("gpt2"));
    writer.set("tokenizer.ggml.model", GgufValue::string("gpt2"));
    writer.set("tokenizer.ggml.pre", GgufValue::string("gpt-2"));
    writer.set("tokenizer.ggml.tokens", strings({"a", "b", "ab", "\xC4\xA0", "\xC4\xA0" "ab", "<|im_end|>"}));
    writer.set("tokenizer.ggml.merges", strings({"a b", "\xC4\xA0 ab"}));
  }
};

TEST_F(TokenizerBpeVocabFromGguf, DefaultsFollowLlamaCpp) {
  const Vocab v = load();
  EXPECT_EQ(v.model, TokenizerModel::Bpe);
  EXPECT_EQ(v.pre, "gpt-2");
  EXPECT_EQ(v.merges.size(), 2u);
  EXPECT_EQ(v.bos, -1);  // llama.cpp's default 11 lies outside these 6 tokens
  EXPECT_EQ(v.unk, -1);
  EXPECT_FALSE(v.add_bos);
  EXPECT_FALSE(v.add_space_prefix);
  EXPECT_EQ(v.eot, 5);  // found by its text
  EXPECT_EQ(v.types[5], TokenType::Control);
  const Tokenizer t(v);
  EXPECT_EQ(t.encode("ab ab", true), (std::vector<int32_t>{2, 4}));
  EXPECT_EQ(t.decode(t.encode("ab ab", false)), "ab ab");
  EXPECT_TRUE(t.is_end_of_generation(5));
  EXPECT_FALSE(t.is_end_of_generation(2));
}

TEST_F(TokenizerBpeVocabFromGguf, Llama3PreTokenizerAddsBos) {
  writer.set("tokenizer.ggml.pre", GgufValue::string("llama-bpe"));
  writer.set("tokenizer.ggml.bos_token_id", GgufValue::u32(5));
  EXPECT_TRUE(load().add_bos);
  writer.set("tokenizer.ggml.add_bos_token", GgufValue::boolean(false));
  EXPECT_FALSE(load().add_bos);
}

TEST_F(TokenizerBpeVocabFromGguf, RejectsUnknownPreTokenizer) {
  writer.set("tokenizer.ggml.pre", GgufValue::string("nonesuch"));
  const std::string error = load_error();
  EXPECT_NE(error.find("'nonesuch'"), std::string::npos) << error;
  EXPECT_NE(error.find("llama-bpe"), std::string::npos) << error;
}

TEST_F(TokenizerBpeVocabFromGguf, RejectsMissingMerges) {
  GgufWriter bare;
  bare.set("tokenizer.ggml.model", GgufValue::string("gpt2"));
  bare.set("tokenizer.ggml.tokens", strings({"a"}));
  writer = bare;
  EXPECT_NE(load_error().find("tokenizer.ggml.merges"), std::string::npos);
}

TEST_F(TokenizerVocabFromGguf, RejectsMissingModelKey) {
  GgufWriter bare;
  bare.set("tokenizer.ggml.tokens", strings({"a"}));
  writer = bare;
  EXPECT_NE(load_error().find("tokenizer.ggml.model"), std::string::npos);
}

TEST_F(TokenizerVocabFromGguf, RejectsMissingOrMisSizedArrays) {
  GgufWriter no_scores;
  no_scores.set("tokenizer.ggml.model", GgufValue::string("llama"));
  no_scores.set("tokenizer.ggml.tokens", strings({"<unk>", "<s>", "</s>"}));
  no_scores.set("tokenizer.ggml.token_type", types(3));
  writer = no_scores;
  EXPECT_NE(load_error().find("tokenizer.ggml.scores"), std::string::npos);

  SetUp();
  writer.set("tokenizer.ggml.scores", floats(3));
  EXPECT_NE(load_error().find("disagree"), std::string::npos);

  SetUp();
  writer.set("tokenizer.ggml.token_type", floats(4));
  EXPECT_NE(load_error().find("token_type"), std::string::npos);
}

TEST_F(TokenizerVocabFromGguf, RejectsSpecialIdsOutsideTheVocab) {
  writer.set("tokenizer.ggml.bos_token_id", GgufValue::u32(4));
  const std::string error = load_error();
  EXPECT_NE(error.find("bos_token_id"), std::string::npos) << error;
}

TEST_F(TokenizerVocabFromGguf, RejectsUnknownTokenType) {
  GgufValue::Array t(4, GgufValue::i32(1));
  t[2] = GgufValue::i32(42);
  writer.set("tokenizer.ggml.token_type", GgufValue::array(GgufType::INT32, std::move(t)));
  EXPECT_NE(load_error().find("42"), std::string::npos);
}

}  // namespace
}  // namespace morphserve
