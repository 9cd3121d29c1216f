// Writing GGUF files and reading them back; a hand-built version 2 file.
#include <cstring>
#include <limits>
#include <random>

#include <gtest/gtest.h>

#include "core/error.h"
#include "model/gguf_file.h"
#include "model/gguf_test_support.h"
#include "model/gguf_writer.h"

namespace morphserve {
namespace {

using testing::ByteImage;
using testing::TempDir;

using Metadata = std::vector<std::pair<std::string, GgufValue>>;

GgufValue string_array(std::vector<std::string> items) {
  GgufValue::Array elements;
  for (std::string& s : items) elements.push_back(GgufValue::string(std::move(s)));
  return GgufValue::array(GgufType::STRING, std::move(elements));
}

GgufValue int_array(std::vector<int32_t> items) {
  GgufValue::Array elements;
  for (int32_t v : items) elements.push_back(GgufValue::i32(v));
  return GgufValue::array(GgufType::INT32, std::move(elements));
}

Metadata every_value_type() {
  return {
      {"general.architecture", GgufValue::string("llama")},
      {"test.u8", GgufValue::u8(200)},
      {"test.i8", GgufValue::i8(-100)},
      {"test.u16", GgufValue::u16(60000)},
      {"test.i16", GgufValue::i16(-30000)},
      {"test.u32", GgufValue::u32(4000000000u)},
      {"test.i32", GgufValue::i32(-2000000000)},
      {"test.f32", GgufValue::f32(3.25f)},
      {"test.f32_tiny", GgufValue::f32(1e-45f)},
      {"test.bool_true", GgufValue::boolean(true)},
      {"test.bool_false", GgufValue::boolean(false)},
      {"test.string", GgufValue::string("héllo, wörld")},
      {"test.empty_string", GgufValue::string("")},
      {"test.u64", GgufValue::u64(std::numeric_limits<uint64_t>::max())},
      {"test.i64", GgufValue::i64(std::numeric_limits<int64_t>::min())},
      {"test.f64", GgufValue::f64(-1.5e300)},
      {"test.u8_array", GgufValue::array(GgufType::UINT8, {GgufValue::u8(0), GgufValue::u8(255)})},
      {"test.bool_array", GgufValue::array(GgufType::BOOL, {GgufValue::boolean(true), GgufValue::boolean(false)})},
      {"test.f32_array", GgufValue::array(GgufType::FLOAT32, {GgufValue::f32(-0.5f), GgufValue::f32(1e30f)})},
      {"test.f64_array", GgufValue::array(GgufType::FLOAT64, {GgufValue::f64(2.0)})},
      {"test.string_array", string_array({"a", "", "<0x0A>"})},
      {"test.empty_array", GgufValue::array(GgufType::INT32, {})},
      {"test.empty_string_array", string_array({})},
      {"test.nested_strings",
       GgufValue::array(GgufType::ARRAY, {string_array({"x", "yy"}), string_array({}), string_array({"zzz"})})},
      {"test.nested_ints", GgufValue::array(GgufType::ARRAY, {int_array({1, -2, 3}), int_array({})})},
      {"test.nested_mixed",  // inner arrays may each have their own element type
       GgufValue::array(GgufType::ARRAY, {int_array({7}), string_array({"seven"}),
                                          GgufValue::array(GgufType::ARRAY, {int_array({8, 9})})})},
      {"test.empty_nested", GgufValue::array(GgufType::ARRAY, {})},
  };
}

struct TensorSpec {
  std::string name;
  std::vector<int64_t> dims;
  DType type;
};

std::vector<TensorSpec> every_dtype() {
  return {
      {"f32.a", {64, 3}, DType::F32},   {"f16.a", {32}, DType::F16},       {"bf16.a", {96, 5, 2}, DType::BF16},
      {"q8_0.a", {64, 3}, DType::Q8_0}, {"q4_0.a", {96, 5, 2}, DType::Q4_0}, {"f16.odd", {7}, DType::F16},
      {"f32.4d", {3, 1, 2, 2}, DType::F32}, {"q4_0.one", {32}, DType::Q4_0},
  };
}

size_t tensor_bytes(const TensorSpec& t) {
  size_t rows = 1;
  for (size_t d = 1; d < t.dims.size(); ++d) rows *= static_cast<size_t>(t.dims[d]);
  return dtype_row_bytes(t.type, t.dims[0]) * rows;
}

std::vector<std::byte> random_bytes(size_t n, std::mt19937& rng) {
  std::vector<std::byte> out(n);
  for (std::byte& b : out) b = static_cast<std::byte>(rng() & 0xff);
  return out;
}

TEST(GgufRoundTripTest, EveryValueTypeAndDTypeWithAlignment64) {
  TempDir dir;
  const std::string path = dir.file("round.gguf");
  std::mt19937 rng(1234);
  const Metadata metadata = every_value_type();
  const std::vector<TensorSpec> specs = every_dtype();
  std::vector<std::vector<std::byte>> data;

  GgufWriter writer(64);
  for (const auto& [key, value] : metadata) writer.set(key, value);
  for (const TensorSpec& t : specs) {
    data.push_back(random_bytes(tensor_bytes(t), rng));
    writer.add_tensor(t.name, t.dims, t.type, data.back().data(), data.back().size());
  }
  writer.write(path);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));

  const GgufFile file = GgufFile::open(path);
  EXPECT_EQ(file.version(), 3u);
  EXPECT_EQ(file.alignment(), 64u);
  EXPECT_EQ(file.data_offset() % 64, 0u);
  Metadata expected = metadata;
  expected.emplace_back("general.alignment", GgufValue::u32(64));  // added because 64 is not the default
  ASSERT_EQ(file.metadata().size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(file.metadata()[i].first, expected[i].first);
    EXPECT_TRUE(file.metadata()[i].second == expected[i].second) << expected[i].first;
  }
  ASSERT_EQ(file.tensors().size(), specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    const GgufTensorInfo& t = file.tensors()[i];
    EXPECT_EQ(t.name, specs[i].name);
    EXPECT_EQ(t.dims, specs[i].dims);
    EXPECT_EQ(t.type, specs[i].type);
    EXPECT_EQ(t.offset % 64, 0u) << t.name;
    ASSERT_EQ(t.bytes, data[i].size()) << t.name;
    EXPECT_EQ(std::memcmp(t.data, data[i].data(), t.bytes), 0) << t.name;
  }

  // Copying everything the reader saw into a new writer must give the same bytes.
  GgufWriter copy(file.alignment());
  for (const auto& [key, value] : file.metadata()) copy.set(key, value);
  for (const GgufTensorInfo& t : file.tensors()) copy.add_tensor(t.name, t.dims, t.type, t.data, t.bytes);
  const std::string copy_path = dir.file("copy.gguf");
  copy.write(copy_path);
  EXPECT_EQ(testing::read_bytes(copy_path), testing::read_bytes(path));
}

TEST(GgufRoundTripTest, DefaultAlignmentWritesNoAlignmentKey) {
  TempDir dir;
  const std::string path = dir.file("plain.gguf");
  GgufWriter writer;
  writer.set("general.name", GgufValue::string("first"));
  writer.set("b", GgufValue::u32(1));
  writer.set("general.name", GgufValue::string("second"));  // replaces in place
  const float values[3] = {1, 2, 3};
  writer.add_tensor("w", {3}, DType::F32, values, sizeof(values));
  writer.write(path);
  const GgufFile file = GgufFile::open(path);
  EXPECT_EQ(file.alignment(), 32u);
  EXPECT_FALSE(file.has("general.alignment"));
  ASSERT_EQ(file.metadata().size(), 2u);
  EXPECT_EQ(file.metadata()[0].first, "general.name");
  EXPECT_EQ(file.get_string("general.name"), "second");
  EXPECT_EQ(file.data_offset() % 32, 0u);
  EXPECT_EQ(file.file_size() % 32, 0u);  // the last tensor is padded too
  EXPECT_EQ(std::memcmp(file.find_tensor("w")->data, values, sizeof(values)), 0);
}

TEST(GgufRoundTripTest, NoTensorsAndNoMetadata) {
  TempDir dir;
  const std::string path = dir.file("empty.gguf");
  GgufWriter().write(path);
  const GgufFile file = GgufFile::open(path);
  EXPECT_TRUE(file.metadata().empty());
  EXPECT_TRUE(file.tensors().empty());
  EXPECT_EQ(file.data_offset(), 32u);  // 24-byte header padded to 32
}

TEST(GgufRoundTripTest, OverwritesAnExistingFile) {
  TempDir dir;
  const std::string path = dir.file("over.gguf");
  testing::write_bytes(path, "old contents");
  GgufWriter writer;
  writer.set("k", GgufValue::i64(-5));
  writer.write(path);
  EXPECT_EQ(GgufFile::open(path).get("k").as_int(), -5);
}

TEST(GgufRoundTripTest, WriterRejectsBadInput) {
  EXPECT_THROW(GgufWriter(48), InvalidArgument);
  EXPECT_THROW(GgufWriter(0), InvalidArgument);
  GgufWriter writer(64);
  EXPECT_THROW(writer.set("general.alignment", GgufValue::u32(32)), InvalidArgument);
  EXPECT_THROW(writer.set("general.alignment", GgufValue::u64(64)), InvalidArgument);
  writer.set("general.alignment", GgufValue::u32(64));
  const std::vector<std::byte> data(1024);
  EXPECT_THROW(writer.add_tensor("a", {33}, DType::Q8_0, data.data(), 34), InvalidArgument);
  EXPECT_THROW(writer.add_tensor("a", {32}, DType::Q8_0, data.data(), 33), InvalidArgument);
  EXPECT_THROW(writer.add_tensor("a", {0}, DType::F32, data.data(), 0), InvalidArgument);
  EXPECT_THROW(writer.add_tensor("a", {}, DType::F32, data.data(), 0), InvalidArgument);
  EXPECT_THROW(writer.add_tensor("a", {1, 1, 1, 1, 1}, DType::F32, data.data(), 4), InvalidArgument);
  EXPECT_THROW(writer.add_tensor("a", {4}, static_cast<DType>(14), data.data(), 4), InvalidArgument);
  EXPECT_THROW(writer.add_tensor(std::string(64, 'n'), {1}, DType::F32, data.data(), 4), InvalidArgument);
  writer.add_tensor(std::string(63, 'n'), {1}, DType::F32, data.data(), 4);
  writer.add_tensor("a", {32}, DType::Q8_0, data.data(), 34);
  EXPECT_THROW(writer.add_tensor("a", {32}, DType::Q8_0, data.data(), 34), InvalidArgument);
  TempDir dir;
  EXPECT_THROW(writer.write(dir.file("no/such/folder/x.gguf")), Error);
}

TEST(GgufRoundTripTest, ReadsAHandBuiltVersion2File) {
  TempDir dir;
  const std::string path = dir.file("v2.gguf");
  ByteImage image;
  image.raw("GGUF", 4).u32(2).u64(2).u64(3);
  image.str("general.architecture").u32(8).str("llama");
  image.str("test.count").u32(4).u32(7);
  image.str("test.list").u32(9).u32(9).u64(1).u32(5).u64(2).u32(static_cast<uint32_t>(-1)).u32(42);
  image.str("w").u32(2).u64(4).u64(2).u32(0).u64(0);
  image.str("v").u32(1).u64(3).u32(1).u64(32);
  image.pad_to(32);
  for (int i = 0; i < 8; ++i) image.f32(static_cast<float>(i) * 0.5f);
  const uint16_t halves[3] = {0x3c00, 0x4000, 0xc000};
  image.raw(halves, sizeof(halves));
  testing::write_bytes(path, image.bytes());

  const GgufFile file = GgufFile::open(path);
  EXPECT_EQ(file.version(), 2u);
  EXPECT_EQ(file.get_string("general.architecture"), "llama");
  EXPECT_EQ(file.get_uint("test.count"), 7u);
  const GgufValue& list = file.get("test.list");
  ASSERT_EQ(list.element_type(), GgufType::ARRAY);
  ASSERT_EQ(list.as_array().size(), 1u);
  EXPECT_TRUE(list.as_array()[0] == int_array({-1, 42}));
  ASSERT_EQ(file.tensors().size(), 2u);
  const GgufTensorInfo& w = file.tensors()[0];
  EXPECT_EQ(w.dims, (std::vector<int64_t>{4, 2}));
  EXPECT_EQ(w.bytes, 32u);
  float last = 0;
  std::memcpy(&last, w.data + 28, 4);
  EXPECT_EQ(last, 3.5f);
  const GgufTensorInfo& v = *file.find_tensor("v");
  EXPECT_EQ(v.type, DType::F16);
  EXPECT_EQ(v.bytes, 6u);
  EXPECT_EQ(v.data, w.data + 32);
  EXPECT_EQ(file.file_size(), file.data_offset() + 38);  // no trailing padding needed
}

}  // namespace
}  // namespace morphserve
