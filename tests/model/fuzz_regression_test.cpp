// Inputs fuzz/ found that once broke a model-file parser, each replayed exactly (they are also in
// fuzz/corpus). A regression fails here on every build, not only in a fuzzing run.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "model/gguf_file.h"
#include "model/gguf_test_support.h"
#include "model/llama_config.h"

namespace morphserve {
namespace {

using testing::ByteImage;

// A version-3 header, no metadata, and one tensor "t" of `type` with the given dims at offset 0.
std::vector<std::byte> one_tensor_file(uint32_t type, const std::vector<uint64_t>& dims) {
  ByteImage image;
  image.raw("GGUF", 4).u32(3).u64(1).u64(0);
  image.str("t").u32(static_cast<uint32_t>(dims.size()));
  for (const uint64_t d : dims) image.u64(d);
  image.u32(type).u64(0).pad_to(32);
  const auto* p = reinterpret_cast<const std::byte*>(image.bytes().data());
  return {p, p + image.size()};
}

std::string parse_error(std::vector<std::byte> bytes) {
  try {
    GgufFile::parse("fuzz.gguf", std::move(bytes));
  } catch (const ModelFileError& e) {
    return e.what();
  }
  return "";
}

// fuzz_gguf (corpus/fuzz_gguf/tensor_size_wraps.gguf): one f32 row of 2^62 values is 2^64 bytes,
// which wrapped to 0 in the row-size multiplication, so the file parsed with a 0-byte tensor
// whose shape claims 2^62 elements.
TEST(FuzzRegression, TensorSizeThatWrapsTo0IsRefused) {
  EXPECT_NE(parse_error(one_tensor_file(0, {uint64_t{1} << 62})).find("tensor t is larger than 2^64 bytes"),
            std::string::npos);
  // A wrap to a small nonzero size was refused only as "truncated", naming a wrong size.
  EXPECT_NE(parse_error(one_tensor_file(0, {(uint64_t{1} << 62) + (uint64_t{1} << 60)})).find("larger than 2^64 bytes"),
            std::string::npos);
  // Just inside 64 bits it is an honest size, and the file is too short for it.
  EXPECT_NE(parse_error(one_tensor_file(0, {uint64_t{1} << 61})).find("is truncated"), std::string::npos);
}

// llama.* metadata with the given head count and head size, no tensors.
std::vector<std::byte> llama_metadata(uint32_t heads, uint32_t head_dim) {
  const std::vector<std::pair<std::string, uint32_t>> ints = {
      {"llama.block_count", 2},          {"llama.embedding_length", 64},     {"llama.feed_forward_length", 172},
      {"llama.attention.head_count", heads}, {"llama.attention.head_count_kv", 4},
      {"llama.attention.key_length", head_dim}, {"llama.attention.value_length", head_dim},
      {"llama.rope.dimension_count", 8}, {"llama.vocab_size", 512},
  };
  ByteImage image;
  image.raw("GGUF", 4).u32(3).u64(0).u64(ints.size() + 1);
  image.str("general.architecture").u32(8).str("llama");
  for (const auto& [key, value] : ints) image.str(key).u32(4).u32(value);
  const auto* p = reinterpret_cast<const std::byte*>(image.bytes().data());
  return {p, p + image.size()};
}

// fuzz_gguf (corpus/fuzz_gguf/attention_width_overflows.gguf): 687865864 heads of 8 dimensions
// passed validation, and q_dim() (an int: heads times head size) then overflowed, undefined
// behaviour in load_llama_gguf and everything that sizes attention buffers.
TEST(FuzzRegression, AttentionWidthBeyond32BitsIsRefused) {
  const GgufFile file = GgufFile::parse("wide.gguf", llama_metadata(687865864, 8));
  try {
    llama_config_from_gguf(file);
    ADD_FAILURE() << "a configuration whose q_dim overflows validated";
  } catch (const ModelFileError& e) {
    EXPECT_NE(std::string(e.what()).find("head_count times the head dimension must fit in 32 bits"),
              std::string::npos)
        << e.what();
  }
  // A wide one that fits still validates.
  const LlamaConfig c = llama_config_from_gguf(GgufFile::parse("ok.gguf", llama_metadata(4 << 20, 256)));
  EXPECT_EQ(c.q_dim(), 1 << 30);
}

}  // namespace
}  // namespace morphserve
