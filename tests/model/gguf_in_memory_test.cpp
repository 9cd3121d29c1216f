// GgufFile::parse (an image in memory, what fuzz/fuzz_gguf feeds) against GgufFile::open (the
// same bytes in a file): the same metadata, tensors and data, and the same error sentences.
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "model/gguf_file.h"
#include "model/gguf_test_support.h"
#include "model/gguf_writer.h"
#include "test_data.h"

namespace morphserve {
namespace {

std::vector<std::byte> as_bytes(const std::string& s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  return {p, p + s.size()};
}

void expect_same(const GgufFile& parsed, const GgufFile& opened) {
  EXPECT_EQ(parsed.path(), opened.path());
  EXPECT_EQ(parsed.version(), opened.version());
  EXPECT_EQ(parsed.alignment(), opened.alignment());
  EXPECT_EQ(parsed.data_offset(), opened.data_offset());
  EXPECT_EQ(parsed.file_size(), opened.file_size());
  EXPECT_EQ(parsed.metadata(), opened.metadata());
  ASSERT_EQ(parsed.tensors().size(), opened.tensors().size());
  for (size_t i = 0; i < parsed.tensors().size(); ++i) {
    const GgufTensorInfo& a = parsed.tensors()[i];
    const GgufTensorInfo& b = opened.tensors()[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.dims, b.dims);
    EXPECT_EQ(a.type, b.type);
    EXPECT_EQ(a.offset, b.offset);
    ASSERT_EQ(a.bytes, b.bytes) << a.name;
    EXPECT_NE(a.data, b.data) << a.name;  // the parsed file holds its own copy
    EXPECT_EQ(std::memcmp(a.data, b.data, a.bytes), 0) << a.name;
  }
}

// The error sentence of parsing `bytes` from memory and from a file, both under the name `path`.
std::pair<std::string, std::string> errors_of(const std::string& bytes, const std::string& path) {
  testing::write_bytes(path, bytes);
  std::pair<std::string, std::string> errors;
  try {
    GgufFile::parse(path, as_bytes(bytes));
  } catch (const ModelFileError& e) {
    errors.first = e.what();
  }
  try {
    GgufFile::open(path);
  } catch (const ModelFileError& e) {
    errors.second = e.what();
  }
  return errors;
}

class GgufInMemoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GgufWriter writer(64);
    writer.set("general.architecture", GgufValue::string("llama"));
    writer.set("test.name", GgufValue::string("in memory"));
    writer.set("test.nested", GgufValue::array(GgufType::ARRAY, {GgufValue::array(GgufType::INT32, {
                                                                     GgufValue::i32(1), GgufValue::i32(-2)})}));
    std::vector<std::byte> q8(68, std::byte{3});
    writer.add_tensor("blk.0.w", {32, 2}, DType::Q8_0, q8.data(), q8.size());
    std::vector<float> f32(12, 0.25f);
    writer.add_tensor("blk.1.w", {4, 3}, DType::F32, f32.data(), f32.size() * sizeof(float));
    path_ = dir_.file("model.gguf");
    writer.write(path_);
    bytes_ = testing::read_bytes(path_);
  }

  testing::TempDir dir_;
  std::string path_;
  std::string bytes_;
};

TEST_F(GgufInMemoryTest, ParseGivesWhatOpenGives) {
  const GgufFile opened = GgufFile::open(path_);
  const GgufFile parsed = GgufFile::parse(path_, as_bytes(bytes_));
  expect_same(parsed, opened);
  EXPECT_EQ(parsed.tensors().size(), 2u);
  EXPECT_EQ(parsed.get_string("test.name"), "in memory");
}

// The file keeps the bytes: tensor data stays readable after the caller's buffer and every other
// copy of the GgufFile are gone.
TEST_F(GgufInMemoryTest, TensorDataOutlivesTheCallersBuffer) {
  std::optional<GgufFile> copy;
  {
    std::vector<std::byte> buffer = as_bytes(bytes_);
    const GgufFile parsed = GgufFile::parse("buffer", std::move(buffer));
    copy.emplace(parsed);
  }
  const GgufTensorInfo* t = copy->find_tensor("blk.1.w");
  ASSERT_NE(t, nullptr);
  float first = 0;
  std::memcpy(&first, t->data, sizeof(float));
  EXPECT_EQ(first, 0.25f);
}

TEST_F(GgufInMemoryTest, ErrorsAreTheSameSentences) {
  const std::string bad = dir_.file("bad.gguf");
  // The writer pads the last tensor, so the data ends before the file does.
  const GgufFile file = GgufFile::open(path_);
  const GgufTensorInfo& last = file.tensors().back();
  const size_t data_end = file.data_offset() + last.offset + last.bytes;
  for (const size_t cut : {size_t{0}, size_t{3}, size_t{10}, size_t{40}, bytes_.size() / 2, data_end - 1}) {
    const auto [parsed, opened] = errors_of(bytes_.substr(0, cut), bad);
    EXPECT_FALSE(parsed.empty()) << "prefix of " << cut << " bytes parsed";
    EXPECT_EQ(parsed, opened) << "prefix of " << cut << " bytes";
  }
  std::string wrong_magic = bytes_;
  wrong_magic[0] = 'X';
  const auto [parsed, opened] = errors_of(wrong_magic, bad);
  EXPECT_NE(parsed.find("is not a GGUF file"), std::string::npos) << parsed;
  EXPECT_EQ(parsed, opened);
}

TEST(GgufInMemoryRealFileTest, Stories260K) {
  MORPHSERVE_REQUIRE_DATA(path, "models/stories260K.gguf");
  const GgufFile opened = GgufFile::open(path.string());
  const GgufFile parsed = GgufFile::parse(path.string(), as_bytes(testing::read_bytes(path.string())));
  expect_same(parsed, opened);
  EXPECT_EQ(parsed.tensors().size(), 48u);
}

}  // namespace
}  // namespace morphserve
