#pragma once
// Little-endian binary reading and writing for GGUF. The reader never touches a byte outside its
// span: every read is checked first, so a hostile or truncated file ends in a ModelFileError, not
// in a read past the mapping.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace morphserve {

// GGUF is little-endian and we reinterpret bytes directly; a big-endian host would need swaps.
static_assert(std::endian::native == std::endian::little, "GGUF I/O assumes a little-endian host");

class GgufCursor {
 public:
  GgufCursor(std::span<const std::byte> bytes, std::string_view path) : bytes_(bytes), path_(path) {}

  size_t position() const { return position_; }
  size_t remaining() const { return bytes_.size() - position_; }
  size_t size() const { return bytes_.size(); }
  const std::string& path() const { return path_; }

  // What is being read, for truncation messages ("the value of metadata key general.name").
  void set_context(std::string context) { context_ = std::move(context); }
  const std::string& context() const { return context_; }

  template <typename T>
  T read() {
    static_assert(std::is_trivially_copyable_v<T>);
    require(sizeof(T));
    T value;
    std::memcpy(&value, bytes_.data() + position_, sizeof(T));
    position_ += sizeof(T);
    return value;
  }

  // A GGUF string: uint64 length, then that many bytes (no terminator). The length is checked
  // against the bytes left before anything is allocated.
  std::string read_string();

  // Throws the "is truncated" ModelFileError unless `count` more bytes are available.
  void require(uint64_t count) const {
    if (count > remaining()) fail_truncated(count);
  }

 private:
  [[noreturn]] void fail_truncated(uint64_t count) const;

  std::span<const std::byte> bytes_;
  std::string path_;
  std::string context_ = "the header";
  size_t position_ = 0;
};

// Appends little-endian values to a growing byte buffer.
class GgufSink {
 public:
  template <typename T>
  void write(T value) {
    static_assert(std::is_trivially_copyable_v<T>);
    append(&value, sizeof(T));
  }
  void write_string(std::string_view s) {
    write<uint64_t>(s.size());
    append(s.data(), s.size());
  }
  // Zero bytes up to the next multiple of `alignment`.
  void pad_to(uint64_t alignment) { bytes_.resize(align_up(bytes_.size(), alignment)); }

  const std::vector<std::byte>& bytes() const { return bytes_; }
  size_t size() const { return bytes_.size(); }

  static uint64_t align_up(uint64_t n, uint64_t alignment) { return (n + alignment - 1) / alignment * alignment; }

 private:
  // resize + memcpy rather than insert: GCC 12 reports a false -Wstringop-overflow for the latter.
  void append(const void* p, size_t n) {
    if (n == 0) return;
    const size_t at = bytes_.size();
    bytes_.resize(at + n);
    std::memcpy(bytes_.data() + at, p, n);
  }

  std::vector<std::byte> bytes_;
};

}  // namespace morphserve
