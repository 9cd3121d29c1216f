// llama.cpp's own tokenizer test vectors for its byte-level BPE vocabularies
// (../shared/data/models/vocab/ggml-vocab-<name>.gguf with .inp/.out), run the way its
// tests/test-tokenizer-0.cpp runs them (add_special = false, parse_special = false), and the
// BPE tokenizer's special tokens, decoding and streaming on those vocabularies.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "model/gguf_file.h"
#include "model/gguf_test_support.h"
#include "model/text_stream_decoder.h"
#include "model/tokenizer.h"
#include "model/tokenizer_vector_files.h"
#include "model/utf8.h"
#include "test_data.h"

namespace morphserve {
namespace {

std::string vocab_file(const std::string& name) { return "models/vocab/ggml-vocab-" + name + ".gguf"; }

Tokenizer load_tokenizer(const std::filesystem::path& path) { return Tokenizer(vocab_from_gguf(GgufFile::open(path.string()))); }

class BpeVectors : public ::testing::TestWithParam<std::string> {};

TEST_P(BpeVectors, AllIdsMatchLlamaCpp) {
  MORPHSERVE_REQUIRE_DATA(vocab_path, vocab_file(GetParam()));
  MORPHSERVE_REQUIRE_DATA(inp_path, vocab_file(GetParam()) + ".inp");
  MORPHSERVE_REQUIRE_DATA(out_path, vocab_file(GetParam()) + ".out");
  const Tokenizer tokenizer = load_tokenizer(vocab_path);
  ASSERT_TRUE(tokenizer.is_bpe());
  const std::vector<std::string> inputs = testing::split_vector_inputs(testing::read_bytes(inp_path));
  const std::vector<std::vector<int32_t>> outputs = testing::read_vector_outputs(out_path);
  ASSERT_EQ(outputs.size(), inputs.size());
  ASSERT_GE(inputs.size(), 40u);
  size_t matched = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::vector<int32_t> ids = tokenizer.encode(inputs[i], /*add_special=*/false, /*parse_special=*/false);
    EXPECT_EQ(ids, outputs[i]) << GetParam() << " vector " << i << ": '" << inputs[i] << "'";
    matched += ids == outputs[i];
  }
  EXPECT_EQ(matched, inputs.size());
}

// Byte-level BPE loses nothing: every vector (all valid UTF-8) reads back as itself, and the
// streaming decoder gives the same text token by token.
TEST_P(BpeVectors, DecodeAndStreamRestoreEveryVector) {
  MORPHSERVE_REQUIRE_DATA(vocab_path, vocab_file(GetParam()));
  MORPHSERVE_REQUIRE_DATA(inp_path, vocab_file(GetParam()) + ".inp");
  const Tokenizer tokenizer = load_tokenizer(vocab_path);
  for (const std::string& input : testing::split_vector_inputs(testing::read_bytes(inp_path))) {
    ASSERT_TRUE(is_valid_utf8(input));
    const std::vector<int32_t> ids = tokenizer.encode(input, true);
    EXPECT_EQ(tokenizer.decode(ids), input);
    StreamDecoder stream(tokenizer);
    std::string streamed;
    for (const int32_t id : ids) {
      const std::string chunk = stream.push(id);
      EXPECT_TRUE(is_valid_utf8(chunk));
      streamed += chunk;
    }
    streamed += stream.flush();
    EXPECT_EQ(streamed, input);
  }
}

INSTANTIATE_TEST_SUITE_P(LlamaCppVocabs, BpeVectors,
                         ::testing::Values("gpt-2", "falcon", "deepseek-llm", "deepseek-coder", "starcoder", "refact", "mpt"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

TEST(BpeVocab, Gpt2Metadata) {
  MORPHSERVE_REQUIRE_DATA(path, vocab_file("gpt-2"));
  const Vocab vocab = vocab_from_gguf(GgufFile::open(path.string()));
  EXPECT_EQ(vocab.model, TokenizerModel::Bpe);
  EXPECT_EQ(vocab.pre, "gpt-2");
  EXPECT_EQ(vocab.tokens.size(), 50257u);
  EXPECT_EQ(vocab.merges.size(), 50000u);
  EXPECT_EQ(vocab.bos, 50256);
  EXPECT_EQ(vocab.eos, 50256);
  EXPECT_EQ(vocab.unk, -1);
  EXPECT_FALSE(vocab.add_bos);
  EXPECT_FALSE(vocab.add_eos);
  EXPECT_FALSE(vocab.add_space_prefix);
}

// gpt-neox has no tokenizer.ggml.pre (and no vectors): llama.cpp reads it as "default".
TEST(BpeVocab, MissingPreTokenizerIsDefault) {
  MORPHSERVE_REQUIRE_DATA(path, vocab_file("gpt-neox"));
  const Tokenizer tokenizer = load_tokenizer(path);
  EXPECT_EQ(tokenizer.vocab().pre, "");
  const std::string text = "Hello world!  It's 2024.\n\tcode()";
  EXPECT_EQ(tokenizer.decode(tokenizer.encode(text, false)), text);
  EXPECT_EQ(tokenizer.encode("Hello world", false), (std::vector<int32_t>{12092, 1533}));
}

TEST(BpeVocab, ParseSpecialAndEndOfGeneration) {
  MORPHSERVE_REQUIRE_DATA(path, vocab_file("gpt-2"));
  const Tokenizer tokenizer = load_tokenizer(path);
  const std::vector<int32_t> plain = tokenizer.encode("<|endoftext|>", false, false);
  EXPECT_GT(plain.size(), 1u);
  EXPECT_EQ(tokenizer.decode(plain), "<|endoftext|>");
  EXPECT_EQ(tokenizer.encode("Hi<|endoftext|>", false, true), (std::vector<int32_t>{17250, 50256}));
  EXPECT_EQ(tokenizer.token_to_piece(50256), "");  // control tokens decode to nothing
  EXPECT_TRUE(tokenizer.is_end_of_generation(50256));
  EXPECT_FALSE(tokenizer.is_end_of_generation(17250));
}

TEST(BpeVocab, FimPadEndsGenerationForStarcoder) {
  MORPHSERVE_REQUIRE_DATA(path, vocab_file("starcoder"));
  const Tokenizer tokenizer = load_tokenizer(path);
  EXPECT_TRUE(tokenizer.is_end_of_generation(0));  // <|endoftext|>
  EXPECT_EQ(tokenizer.vocab().tokens[4], "<fim_pad>");
  EXPECT_TRUE(tokenizer.is_end_of_generation(4));  // llama.cpp's FIM pad is end-of-generation
  EXPECT_FALSE(tokenizer.is_end_of_generation(1));  // <fim_prefix>
}

// User-defined tokens are cut out before pre-tokenizing, even without parse_special.
TEST(BpeVocab, UserDefinedTokensAreMatchedWhole) {
  MORPHSERVE_REQUIRE_DATA(path, vocab_file("mpt"));
  const Tokenizer tokenizer = load_tokenizer(path);
  const int32_t four_spaces = tokenizer.piece_id("    ");
  ASSERT_GE(four_spaces, 0);
  ASSERT_EQ(tokenizer.type(four_spaces), TokenType::UserDefined);
  const std::vector<int32_t> ids = tokenizer.encode("a    b", false);
  EXPECT_NE(std::find(ids.begin(), ids.end(), four_spaces), ids.end());
  EXPECT_EQ(tokenizer.decode(ids), "a    b");
}

// A character spelled by several byte tokens comes out of the stream only when complete.
TEST(BpeVocab, StreamHoldsBackSplitCharacters) {
  MORPHSERVE_REQUIRE_DATA(path, vocab_file("gpt-2"));
  const Tokenizer tokenizer = load_tokenizer(path);
  const std::string llama = "\xF0\x9F\xA6\x99";  // U+1F999, not a single GPT-2 token
  const std::vector<int32_t> ids = tokenizer.encode(llama, false);
  ASSERT_GT(ids.size(), 1u);
  StreamDecoder stream(tokenizer);
  for (size_t i = 0; i + 1 < ids.size(); ++i) EXPECT_EQ(stream.push(ids[i]), "") << i;
  EXPECT_EQ(stream.push(ids.back()), llama);
  EXPECT_EQ(stream.flush(), "");
  // Alone, a partial character decodes to U+FFFD rather than to ill-formed bytes.
  EXPECT_EQ(tokenizer.decode(std::vector<int32_t>{ids.front()}), kUtf8Replacement);
}

// llama.cpp reads ill-formed UTF-8 as U+FFFD before BPE, so the ids are those of U+FFFD.
TEST(BpeVocab, IllFormedUtf8ReadsAsReplacementCharacter) {
  MORPHSERVE_REQUIRE_DATA(path, vocab_file("gpt-2"));
  const Tokenizer tokenizer = load_tokenizer(path);
  EXPECT_EQ(tokenizer.encode("a\xFF", false), tokenizer.encode("a\xEF\xBF\xBD", false));
}

}  // namespace
}  // namespace morphserve
