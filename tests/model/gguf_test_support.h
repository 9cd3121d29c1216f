#pragma once
// Helpers shared by the GGUF tests: a per-test temporary folder, whole-file byte I/O, and
// little-endian patching of bytes inside a file image.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <string_view>

#include <gtest/gtest.h>
#include <unistd.h>

namespace morphserve::testing {

// A fresh folder under the system temp dir, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = "morphserve-";
    if (info) name += std::string(info->test_suite_name()) + "-" + info->name() + "-";
    for (char& ch : name) {
      if (ch == '/') ch = '_';
    }
    name += std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}());
    path_ = std::filesystem::temp_directory_path() / name;
    std::filesystem::create_directories(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }

  const std::filesystem::path& path() const { return path_; }
  std::string file(std::string_view name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::string& path, std::string_view bytes) {
  // Remove rather than truncate: ext4 flushes a truncated-and-rewritten file to disk on close,
  // which made the many-file tests crawl.
  std::error_code ignored;
  std::filesystem::remove(path, ignored);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

// Offset just past the first occurrence of `needle` (a key or tensor name) in a file image.
inline size_t offset_after(const std::string& bytes, std::string_view needle) {
  const size_t at = bytes.find(needle);
  EXPECT_NE(at, std::string::npos) << needle << " not found";
  return at == std::string::npos ? 0 : at + needle.size();
}

template <typename T>
void put(std::string& bytes, size_t offset, T value) {
  std::memcpy(bytes.data() + offset, &value, sizeof(T));
}

template <typename T>
T get(const std::string& bytes, size_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}

// Builds a little-endian byte image by hand, independent of the writer under test.
class ByteImage {
 public:
  ByteImage& u32(uint32_t v) { return raw(&v, 4); }
  ByteImage& u64(uint64_t v) { return raw(&v, 8); }
  ByteImage& f32(float v) { return raw(&v, 4); }
  ByteImage& str(std::string_view s) {
    u64(s.size());
    bytes_.append(s);
    return *this;
  }
  ByteImage& raw(const void* p, size_t n) {
    bytes_.append(static_cast<const char*>(p), n);
    return *this;
  }
  ByteImage& pad_to(size_t alignment) {
    bytes_.resize((bytes_.size() + alignment - 1) / alignment * alignment, '\0');
    return *this;
  }
  const std::string& bytes() const { return bytes_; }
  size_t size() const { return bytes_.size(); }

 private:
  std::string bytes_;
};

}  // namespace morphserve::testing
