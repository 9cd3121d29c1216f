// Malformed GGUF files: every one must end in a ModelFileError that names the file and the fault,
// never in a crash, a read outside the mapping or a huge allocation.
#include <random>

#include <gtest/gtest.h>

#include "core/error.h"
#include "model/gguf_file.h"
#include "model/gguf_test_support.h"
#include "model/gguf_writer.h"

namespace morphserve {
namespace {

using testing::get;
using testing::offset_after;
using testing::put;

class GgufCorruptTest : public ::testing::Test {
 protected:
  // A small valid file: a few keys, a nested array, and two tensors, the last of which fills its
  // aligned slot exactly, so the file has no trailing padding and every shorter prefix loses data.
  void SetUp() override {
    GgufWriter writer;
    writer.set("general.architecture", GgufValue::string("llama"));
    writer.set("test.aaa", GgufValue::u32(1));
    writer.set("test.bbb", GgufValue::u32(2));
    writer.set("test.name", GgufValue::string("tiny"));
    writer.set("test.list", GgufValue::array(GgufType::STRING, {GgufValue::string("a"), GgufValue::string("bc")}));
    writer.set("test.nested", GgufValue::array(GgufType::ARRAY, {GgufValue::array(GgufType::INT32, {
                                                                     GgufValue::i32(1), GgufValue::i32(2)})}));
    std::vector<std::byte> q8(34, std::byte{1});
    writer.add_tensor("blk.0.w", {32}, DType::Q8_0, q8.data(), q8.size());
    std::vector<float> f32(32, 0.5f);
    writer.add_tensor("blk.1.w", {8, 4}, DType::F32, f32.data(), f32.size() * sizeof(float));
    const std::string path = dir_.file("good.gguf");
    writer.write(path);
    good_ = testing::read_bytes(path);
  }

  // Offsets of fields in `good_`.
  size_t key_type(std::string_view key) const { return offset_after(good_, key); }
  size_t tensor_n_dims(std::string_view name) const { return offset_after(good_, name); }
  size_t tensor_dim(std::string_view name, int d) const { return tensor_n_dims(name) + 4 + 8 * d; }
  size_t tensor_type(std::string_view name) const {
    return tensor_dim(name, static_cast<int>(get<uint32_t>(good_, tensor_n_dims(name))));
  }
  size_t tensor_offset(std::string_view name) const { return tensor_type(name) + 4; }

  // Writes `bytes`, opens it and checks the error names the file and contains `phrase`.
  void expect_error(const std::string& bytes, std::string_view phrase) {
    const std::string path = dir_.file("bad.gguf");
    testing::write_bytes(path, bytes);
    try {
      GgufFile::open(path);
      ADD_FAILURE() << "expected ModelFileError containing: " << phrase;
    } catch (const ModelFileError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(path), std::string::npos) << what;
      EXPECT_NE(what.find(phrase), std::string::npos) << "message: " << what << "\nexpected: " << phrase;
    }
  }

  std::string with_u32(size_t offset, uint32_t value) const {
    std::string bytes = good_;
    put(bytes, offset, value);
    return bytes;
  }
  std::string with_u64(size_t offset, uint64_t value) const {
    std::string bytes = good_;
    put(bytes, offset, value);
    return bytes;
  }

  testing::TempDir dir_;
  std::string good_;
};

TEST_F(GgufCorruptTest, TheBaseFileIsValid) {
  const std::string path = dir_.file("good.gguf");
  const GgufFile file = GgufFile::open(path);
  ASSERT_EQ(file.tensors().size(), 2u);
  const GgufTensorInfo& last = file.tensors().back();
  EXPECT_EQ(file.file_size(), file.data_offset() + last.offset + last.bytes);
}

TEST_F(GgufCorruptTest, EveryTruncationFails) {
  const std::string path = dir_.file("prefix.gguf");
  for (size_t length = 0; length <= good_.size(); ++length) {
    testing::write_bytes(path, std::string_view(good_).substr(0, length));
    if (length == good_.size()) {
      EXPECT_NO_THROW(GgufFile::open(path));
      continue;
    }
    try {
      GgufFile::open(path);
      ADD_FAILURE() << "a " << length << "-byte prefix of " << good_.size() << " bytes loaded";
    } catch (const ModelFileError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(path), std::string::npos) << what;
      EXPECT_NE(what.find(length == 0 ? "is empty" : "truncated"), std::string::npos) << length << ": " << what;
    }
  }
}

TEST_F(GgufCorruptTest, WrongMagic) {
  std::string bytes = good_;
  bytes[0] = '\x7f';
  expect_error(bytes, R"(is not a GGUF file (magic "\x7fGUF", expected "GGUF"))");
  expect_error("GGML and then some more bytes", "is not a GGUF file");
}

TEST_F(GgufCorruptTest, UnsupportedVersions) {
  expect_error(with_u32(4, 1), "uses GGUF version 1, which morphserve does not support (supported: 2, 3)");
  expect_error(with_u32(4, 99), "uses GGUF version 99, which morphserve does not support");
  expect_error(with_u32(4, 0), "uses GGUF version 0");
  expect_error(with_u32(4, 0x03000000), "is a big-endian GGUF file (version 3)");
}

TEST_F(GgufCorruptTest, AbsurdCounts) {
  expect_error(with_u64(8, uint64_t{1} << 62), "claims 4611686018427387904 tensors, which cannot fit");
  expect_error(with_u64(16, uint64_t{1} << 62), "claims 4611686018427387904 metadata entries, which cannot fit");
  expect_error(with_u64(16, std::numeric_limits<uint64_t>::max()), "metadata entries, which cannot fit");
}

TEST_F(GgufCorruptTest, AbsurdStringLength) {
  expect_error(with_u64(key_type("test.name") + 4, uint64_t{1} << 62),
               "metadata key test.name has a string length of 4611686018427387904 bytes, but only");
  expect_error(with_u64(24, std::numeric_limits<uint64_t>::max()),  // the first key's length
               "metadata entry 0 has a string length of 18446744073709551615 bytes");
  expect_error(with_u64(offset_after(good_, "test.list") + 4 + 4 + 8, uint64_t{1} << 62),
               "metadata key test.list has a string length of 4611686018427387904 bytes");
  expect_error(with_u64(offset_after(good_, "blk.1.w") - 7 - 8, uint64_t{1} << 62),
               "tensor info 1 has a string length of 4611686018427387904 bytes");
}

TEST_F(GgufCorruptTest, AbsurdArrayCounts) {
  const size_t list_count = key_type("test.list") + 4 + 4;
  expect_error(with_u64(list_count, uint64_t{1} << 62),
               "metadata key test.list claims 4611686018427387904 string elements, which cannot fit");
  const size_t inner_count = key_type("test.nested") + 4 + 4 + 8 + 4;
  expect_error(with_u64(inner_count, uint64_t{1} << 40), "claims 1099511627776 int32 elements");
}

TEST_F(GgufCorruptTest, UnknownValueTypes) {
  expect_error(with_u32(key_type("test.aaa"), 13), "metadata key test.aaa has unknown value type 13");
  expect_error(with_u32(key_type("test.list") + 4, 999),
               "metadata key test.list is an array of unknown value type 999");
}

TEST_F(GgufCorruptTest, DuplicateKeyAndTensorName) {
  std::string bytes = good_;
  bytes.replace(bytes.find("test.bbb"), 8, "test.aaa");
  expect_error(bytes, "metadata key test.aaa appears twice");
  bytes = good_;
  bytes.replace(bytes.find("blk.1.w"), 7, "blk.0.w");
  expect_error(bytes, "tensor name blk.0.w appears twice");
}

TEST_F(GgufCorruptTest, UnsupportedTensorTypes) {
  expect_error(with_u32(tensor_type("blk.1.w"), 16),
               ": tensor blk.1.w has type iq2_xxs, which morphserve does not support (supported: ");
  expect_error(with_u32(tensor_type("blk.1.w"), 999), "tensor blk.1.w has type id 999 (not a GGML type)");
  expect_error(with_u32(tensor_type("blk.0.w"), 3), "tensor blk.0.w has type q4_1, which morphserve does not");
}

TEST_F(GgufCorruptTest, BadDimensionCounts) {
  expect_error(with_u32(tensor_n_dims("blk.1.w"), 0), "tensor blk.1.w has 0 dimensions, but GGUF allows 1 to 4");
  expect_error(with_u32(tensor_n_dims("blk.1.w"), 5), "tensor blk.1.w has 5 dimensions");
  expect_error(with_u32(tensor_n_dims("blk.1.w"), 0xffffffff), "has 4294967295 dimensions");
}

TEST_F(GgufCorruptTest, BadDimensions) {
  expect_error(with_u64(tensor_dim("blk.1.w", 1), 0), "tensor blk.1.w has dimension 1 of size 0, which is empty");
  expect_error(with_u64(tensor_dim("blk.1.w", 0), uint64_t{1} << 63), "negative or too large");
  expect_error(with_u64(tensor_dim("blk.1.w", 0), std::numeric_limits<uint64_t>::max()), "negative or too large");
  std::string bytes = with_u64(tensor_dim("blk.1.w", 0), uint64_t{1} << 40);
  put(bytes, tensor_dim("blk.1.w", 1), uint64_t{1} << 40);
  expect_error(bytes, "tensor blk.1.w has too many elements");
  // Large but representable: the data cannot be in the file.
  expect_error(with_u64(tensor_dim("blk.1.w", 1), uint64_t{1} << 40), "is truncated: tensor blk.1.w needs bytes up to");
  expect_error(with_u64(tensor_dim("blk.0.w", 0), 33), "tensor blk.0.w has type q8_0 but its first dimension 33 is "
                                                       "not a multiple of 32");
}

TEST_F(GgufCorruptTest, MisalignedAndOutOfRangeOffsets) {
  const size_t offset = tensor_offset("blk.1.w");
  const uint64_t good_offset = get<uint64_t>(good_, offset);
  expect_error(with_u64(offset, good_offset + 4),
               "tensor blk.1.w has offset " + std::to_string(good_offset + 4) + ", which is not a multiple of the "
               "alignment 32");
  const uint64_t needed = good_.size() + 1024;  // blk.1.w is the last tensor and fills the file's end
  expect_error(with_u64(offset, good_offset + 1024), "is truncated: tensor blk.1.w needs bytes up to " +
                                                         std::to_string(needed) + " but the file has " +
                                                         std::to_string(good_.size()));
  expect_error(with_u64(offset, std::numeric_limits<uint64_t>::max() - 31), "is truncated: tensor blk.1.w needs bytes");
  expect_error(good_.substr(0, good_.size() - 1),
               "is truncated: tensor blk.1.w needs bytes up to " + std::to_string(good_.size()) + " but the file has " +
                   std::to_string(good_.size() - 1));
}

TEST_F(GgufCorruptTest, BadAlignment) {
  GgufWriter writer(64);
  writer.set("general.name", GgufValue::string("aligned"));
  const std::string path = dir_.file("aligned.gguf");
  writer.write(path);
  const std::string aligned = testing::read_bytes(path);
  const size_t type = offset_after(aligned, "general.alignment");
  std::string bytes = aligned;
  put(bytes, type + 4, uint32_t{48});
  expect_error(bytes, "general.alignment is 48, which is not a nonzero power of two");
  put(bytes, type + 4, uint32_t{0});
  expect_error(bytes, "general.alignment is 0, which is not a nonzero power of two");
  bytes = aligned;
  put(bytes, type, static_cast<uint32_t>(GgufType::INT32));
  expect_error(bytes, "general.alignment must be a uint32, but it has type int32");
}

TEST_F(GgufCorruptTest, DeeplyNestedArrays) {
  // 16 levels load; 17 would let a hostile file recurse without bound.
  auto nested = [](int levels) {
    GgufValue value = GgufValue::array(GgufType::UINT8, {GgufValue::u8(1)});
    for (int i = 1; i < levels; ++i) value = GgufValue::array(GgufType::ARRAY, {value});
    return value;
  };
  const std::string path = dir_.file("deep.gguf");
  GgufWriter ok;
  ok.set("deep", nested(16));
  ok.write(path);
  EXPECT_TRUE(GgufFile::open(path).get("deep") == nested(16));
  GgufWriter deep;
  deep.set("deep", nested(17));
  deep.write(path);
  expect_error(testing::read_bytes(path), "metadata key deep nests arrays more than 16 deep");
}

TEST_F(GgufCorruptTest, MissingFile) {
  EXPECT_THROW(GgufFile::open(dir_.file("absent.gguf")), ModelFileError);
  EXPECT_THROW(GgufFile::open(dir_.path().string()), ModelFileError);
}

// Random byte damage anywhere in the file: a ModelFileError or a successful load, nothing else.
TEST_F(GgufCorruptTest, RandomDamageNeverCrashes) {
  std::mt19937 rng(42);
  const std::string path = dir_.file("fuzz.gguf");
  int failures = 0;
  for (int round = 0; round < 4000; ++round) {
    std::string bytes = good_;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < flips; ++i) {
      // Mostly the header, where the structure lives; sometimes a whole field is set to 0xff.
      const size_t at = rng() % (rng() % 4 == 0 ? bytes.size() : std::min<size_t>(bytes.size(), 400));
      bytes[at] = rng() % 3 == 0 ? '\xff' : static_cast<char>(bytes[at] ^ (1 << (rng() % 8)));
    }
    testing::write_bytes(path, bytes);
    try {
      const GgufFile file = GgufFile::open(path);
      for (const GgufTensorInfo& t : file.tensors()) {
        ASSERT_LE(file.data_offset() + t.offset + t.bytes, file.file_size());
      }
    } catch (const ModelFileError&) {
      ++failures;
    }
  }
  EXPECT_GT(failures, 0);
}

}  // namespace
}  // namespace morphserve
