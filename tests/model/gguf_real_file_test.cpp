// Reading the real GGUF files in ../shared/data/models (written by llama.cpp's tools).
#include <algorithm>
#include <cmath>
#include <cstring>

#include <gtest/gtest.h>

#include "core/error.h"
#include "model/gguf_file.h"
#include "test_data.h"

namespace morphserve {
namespace {

TEST(GgufRealFileTest, Stories260KHeaderAndMetadata) {
  MORPHSERVE_REQUIRE_DATA(path, "models/stories260K.gguf");
  const GgufFile file = GgufFile::open(path.string());
  EXPECT_EQ(file.version(), 3u);
  EXPECT_EQ(file.metadata().size(), 19u);
  EXPECT_EQ(file.tensors().size(), 48u);
  EXPECT_EQ(file.alignment(), 32u);
  EXPECT_EQ(file.data_offset(), 14176u);
  EXPECT_EQ(file.file_size(), 1185376u);

  EXPECT_EQ(file.get_string("general.architecture"), "llama");
  EXPECT_EQ(file.get_uint("llama.block_count"), 5u);
  EXPECT_EQ(file.get_uint("llama.embedding_length"), 64u);
  EXPECT_EQ(file.get_uint("tokenizer.ggml.padding_token_id"), 4294967295u);
  EXPECT_NEAR(*file.get_float_opt("llama.attention.layer_norm_rms_epsilon"), 1e-5, 1e-12);
  EXPECT_FALSE(file.get_uint_opt("llama.rope.freq_base").has_value());
  EXPECT_EQ(file.metadata().front().first, "tokenizer.ggml.tokens");  // file order is kept

  const GgufValue& tokens = file.get("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.type(), GgufType::ARRAY);
  EXPECT_EQ(tokens.element_type(), GgufType::STRING);
  ASSERT_EQ(tokens.as_array().size(), 512u);
  EXPECT_EQ(tokens.as_array()[0].as_string(), "<unk>");
  EXPECT_EQ(tokens.as_array()[1].as_string(), "<s>");
  EXPECT_EQ(tokens.as_array()[2].as_string(), "</s>");

  const GgufValue& scores = file.get("tokenizer.ggml.scores");
  EXPECT_EQ(scores.element_type(), GgufType::FLOAT32);
  ASSERT_EQ(scores.as_array().size(), 512u);
  EXPECT_TRUE(scores.as_array()[100].is_float());

  const GgufValue& token_type = file.get("tokenizer.ggml.token_type");
  EXPECT_EQ(token_type.element_type(), GgufType::INT32);
  EXPECT_EQ(token_type.as_array()[0].as_int(), 2);
}

TEST(GgufRealFileTest, Stories260KTensors) {
  MORPHSERVE_REQUIRE_DATA(path, "models/stories260K.gguf");
  const GgufFile file = GgufFile::open(path.string());
  uint64_t end = 0;
  for (const GgufTensorInfo& t : file.tensors()) {
    EXPECT_EQ(t.type, DType::F32) << t.name;
    EXPECT_EQ(t.offset % 32, 0u) << t.name;
    EXPECT_EQ(t.bytes, static_cast<size_t>(t.elements()) * 4) << t.name;
    // Every pointer sits where its offset says, relative to the first tensor's.
    EXPECT_EQ(t.data - file.tensors()[0].data,
              static_cast<std::ptrdiff_t>(t.offset) - static_cast<std::ptrdiff_t>(file.tensors()[0].offset));
    end = std::max<uint64_t>(end, file.data_offset() + t.offset + t.bytes);
  }
  EXPECT_EQ(end, file.file_size());

  const GgufTensorInfo* embd = file.find_tensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->dims, (std::vector<int64_t>{64, 512}));
  EXPECT_EQ(embd->elements(), 64 * 512);
  const GgufTensorInfo* down = file.find_tensor("blk.4.ffn_down.weight");
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->dims, (std::vector<int64_t>{172, 64}));
  EXPECT_EQ(file.find_tensor("blk.5.ffn_down.weight"), nullptr);

  // The converter wrote the shared classifier twice; the bytes must agree.
  const GgufTensorInfo* output = file.find_tensor("output.weight");
  ASSERT_NE(output, nullptr);
  ASSERT_EQ(output->bytes, embd->bytes);
  EXPECT_EQ(std::memcmp(output->data, embd->data, embd->bytes), 0);
}

TEST(GgufRealFileTest, TensorDataOutlivesTheFileObject) {
  MORPHSERVE_REQUIRE_DATA(path, "models/stories260K.gguf");
  GgufFile moved = GgufFile::open(path.string());
  const GgufFile file = std::move(moved);
  const GgufTensorInfo* norm = file.find_tensor("output_norm.weight");
  ASSERT_NE(norm, nullptr);
  float first = 0;
  std::memcpy(&first, norm->data, sizeof(first));
  EXPECT_TRUE(std::isfinite(first));
}

TEST(GgufRealFileTest, TypedLookupsNameFileAndKey) {
  MORPHSERVE_REQUIRE_DATA(path, "models/stories260K.gguf");
  const GgufFile file = GgufFile::open(path.string());
  try {
    file.get_string("llama.block_count");
    FAIL() << "expected ModelFileError";
  } catch (const ModelFileError& e) {
    EXPECT_EQ(std::string(e.what()),
              path.string() + ": metadata key llama.block_count is a uint32, expected a string");
  }
  try {
    file.get_uint("llama.missing");
    FAIL() << "expected ModelFileError";
  } catch (const ModelFileError& e) {
    EXPECT_EQ(std::string(e.what()), path.string() + " has no metadata key llama.missing");
  }
  EXPECT_THROW(file.get_bool_opt("general.name"), ModelFileError);
}

TEST(GgufRealFileTest, VocabOnlyFileWithoutTensorsOrPadding) {
  MORPHSERVE_REQUIRE_DATA(path, "models/ggml-vocab-llama-spm.gguf");
  const GgufFile file = GgufFile::open(path.string());
  EXPECT_EQ(file.version(), 3u);
  EXPECT_EQ(file.metadata().size(), 22u);
  EXPECT_TRUE(file.tensors().empty());
  EXPECT_EQ(file.file_size(), 723869u);
  EXPECT_GE(file.data_offset(), file.file_size());  // the header runs to the very end
  EXPECT_EQ(file.get("tokenizer.ggml.tokens").as_array().size(), 32000u);
  EXPECT_EQ(file.get_string_opt("tokenizer.ggml.pre"), "default");
  EXPECT_EQ(file.get_bool_opt("tokenizer.ggml.add_bos_token"), true);
  EXPECT_EQ(file.get_bool_opt("tokenizer.ggml.add_eos_token"), false);
  EXPECT_EQ(file.get_uint("llama.vocab_size"), 32000u);
}

}  // namespace
}  // namespace morphserve
