// llama.cpp's own tokenizer test vectors for the Llama-2 SentencePiece vocabulary, run the way
// its tests/test-tokenizer-0.cpp runs them (add_special = false, parse_special = false).
#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "model/gguf_file.h"
#include "model/gguf_test_support.h"
#include "model/tokenizer.h"
#include "test_data.h"

namespace morphserve {
namespace {

// The .inp holds each test string followed by the separator; the .out one line of ids per string.
std::vector<std::string> split_inputs(const std::string& raw) {
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<std::string> inputs;
  for (size_t pos = 0; pos < raw.size();) {
    const size_t next = raw.find(separator, pos);
    if (next == std::string::npos) {
      inputs.push_back(raw.substr(pos));
      break;
    }
    inputs.push_back(raw.substr(pos, next - pos));
    pos = next + separator.size();
  }
  return inputs;
}

std::vector<std::vector<int32_t>> read_outputs(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<std::vector<int32_t>> outputs;
  for (std::string line; std::getline(in, line);) {
    std::istringstream ids(line);
    std::vector<int32_t> row;
    for (int32_t id; ids >> id;) row.push_back(id);
    outputs.push_back(std::move(row));
  }
  return outputs;
}

TEST(TokenizerVectors, AllLlamaSpmVectorsMatchLlamaCpp) {
  MORPHSERVE_REQUIRE_DATA(vocab_path, "models/ggml-vocab-llama-spm.gguf");
  MORPHSERVE_REQUIRE_DATA(inp_path, "models/ggml-vocab-llama-spm.gguf.inp");
  MORPHSERVE_REQUIRE_DATA(out_path, "models/ggml-vocab-llama-spm.gguf.out");

  const Tokenizer tokenizer(vocab_from_gguf(GgufFile::open(vocab_path.string())));
  const std::vector<std::string> inputs = split_inputs(testing::read_bytes(inp_path));
  const std::vector<std::vector<int32_t>> outputs = read_outputs(out_path);
  ASSERT_EQ(inputs.size(), 46u);
  ASSERT_EQ(outputs.size(), inputs.size());

  int matched = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::vector<int32_t> ids = tokenizer.encode(inputs[i], /*add_special=*/false, /*parse_special=*/false);
    EXPECT_EQ(ids, outputs[i]) << "vector " << i << ": '" << inputs[i] << "'";
    matched += ids == outputs[i];
  }
  EXPECT_EQ(matched, 46);
}

TEST(TokenizerVectors, LlamaSpmVocabMetadata) {
  MORPHSERVE_REQUIRE_DATA(vocab_path, "models/ggml-vocab-llama-spm.gguf");
  const Vocab vocab = vocab_from_gguf(GgufFile::open(vocab_path.string()));
  EXPECT_EQ(vocab.tokens.size(), 32000u);
  EXPECT_EQ(vocab.bos, 1);
  EXPECT_EQ(vocab.eos, 2);
  EXPECT_EQ(vocab.unk, 0);
  EXPECT_TRUE(vocab.add_bos);
  EXPECT_FALSE(vocab.add_eos);
  EXPECT_TRUE(vocab.add_space_prefix);
  EXPECT_EQ(vocab.types[0], TokenType::Unknown);
  EXPECT_EQ(vocab.types[1], TokenType::Control);
  EXPECT_EQ(vocab.types[3], TokenType::Byte);
}

// The decoded vectors read back as their input (the Llama-2 vocab covers every byte).
TEST(TokenizerVectors, DecodeRestoresEveryVector) {
  MORPHSERVE_REQUIRE_DATA(vocab_path, "models/ggml-vocab-llama-spm.gguf");
  MORPHSERVE_REQUIRE_DATA(inp_path, "models/ggml-vocab-llama-spm.gguf.inp");
  const Tokenizer tokenizer(vocab_from_gguf(GgufFile::open(vocab_path.string())));
  for (const std::string& input : split_inputs(testing::read_bytes(inp_path))) {
    EXPECT_EQ(tokenizer.decode(tokenizer.encode(input, true)), input);
  }
}

TEST(TokenizerVectors, ParseSpecialTurnsControlTextIntoTokens) {
  MORPHSERVE_REQUIRE_DATA(vocab_path, "models/ggml-vocab-llama-spm.gguf");
  const Tokenizer tokenizer(vocab_from_gguf(GgufFile::open(vocab_path.string())));
  // As plain text "<s>" is three pieces; parsed, it is BOS, and the text after it gets a new
  // dummy-prefix space ("Hello" -> "▁Hello" = 15043).
  const std::vector<int32_t> plain = tokenizer.encode("<s>Hello", false, false);
  EXPECT_GT(plain.size(), 2u);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 1), 0);
  EXPECT_EQ(tokenizer.encode("<s>Hello", false, true), (std::vector<int32_t>{1, 15043}));
  EXPECT_EQ(tokenizer.encode("Hello</s><s>Hello", true, true), (std::vector<int32_t>{1, 15043, 2, 1, 15043}));
  EXPECT_EQ(tokenizer.encode("</s>", false, true), (std::vector<int32_t>{2}));
}

}  // namespace
}  // namespace morphserve
