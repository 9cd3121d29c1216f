#include "model/gguf_writer.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "model/gguf_cursor.h"

namespace morphserve {

namespace {

constexpr uint32_t kVersion = 3;
constexpr std::string_view kAlignmentKey = "general.alignment";

void write_value(GgufSink& out, const GgufValue& value) {
  switch (value.type()) {
    case GgufType::UINT8: out.write(static_cast<uint8_t>(value.as_uint())); return;
    case GgufType::INT8: out.write(static_cast<int8_t>(value.as_int())); return;
    case GgufType::UINT16: out.write(static_cast<uint16_t>(value.as_uint())); return;
    case GgufType::INT16: out.write(static_cast<int16_t>(value.as_int())); return;
    case GgufType::UINT32: out.write(static_cast<uint32_t>(value.as_uint())); return;
    case GgufType::INT32: out.write(static_cast<int32_t>(value.as_int())); return;
    case GgufType::FLOAT32: out.write(static_cast<float>(value.as_float())); return;
    case GgufType::BOOL: out.write(static_cast<uint8_t>(value.as_bool() ? 1 : 0)); return;
    case GgufType::STRING: out.write_string(value.as_string()); return;
    case GgufType::ARRAY:
      out.write(static_cast<uint32_t>(value.element_type()));
      out.write(static_cast<uint64_t>(value.as_array().size()));
      for (const GgufValue& element : value.as_array()) write_value(out, element);
      return;
    case GgufType::UINT64: out.write(value.as_uint()); return;
    case GgufType::INT64: out.write(value.as_int()); return;
    case GgufType::FLOAT64: out.write(value.as_float()); return;
  }
  fail<InvalidArgument>("cannot write a GGUF value of unknown type {}", static_cast<uint32_t>(value.type()));
}

// Writes all of `bytes` to `file`; false on a short write (errno says why).
bool write_all(std::FILE* file, const void* bytes, size_t size) {
  return size == 0 || std::fwrite(bytes, 1, size, file) == size;
}

}  // namespace

GgufWriter::GgufWriter(uint64_t alignment) : alignment_(alignment) {
  // The file stores the alignment as a uint32, and llama.cpp needs a power of two.
  if (!std::has_single_bit(alignment) || alignment > UINT32_MAX) {
    fail<InvalidArgument>("GGUF alignment must be a power of two that fits in 32 bits, got {}", alignment);
  }
}

void GgufWriter::set(const std::string& key, GgufValue value) {
  if (key == kAlignmentKey) {
    // Accepted so metadata can be copied from another file, but it may not contradict the
    // alignment the data is laid out with.
    if (value.type() != GgufType::UINT32 || value.as_uint() != alignment_) {
      fail<InvalidArgument>("general.alignment must be the uint32 {} this writer was made with", alignment_);
    }
  }
  for (auto& [k, v] : metadata_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  metadata_.emplace_back(key, std::move(value));
}

void GgufWriter::add_tensor(const std::string& name, std::vector<int64_t> dims, DType type, const void* data,
                            size_t bytes) {
  if (name.empty()) fail<InvalidArgument>("a GGUF tensor needs a name");
  // ggml keeps names in a 64-byte buffer with its terminator; longer names would not load there.
  if (name.size() >= 64) fail<InvalidArgument>("tensor name {} is {} bytes; GGUF allows at most 63", name, name.size());
  for (const PendingTensor& t : tensors_) {
    if (t.name == name) fail<InvalidArgument>("tensor {} was added to the GGUF writer twice", name);
  }
  if (!is_known_dtype(static_cast<uint32_t>(type))) {
    fail<InvalidArgument>("tensor {} has unknown dtype {}", name, static_cast<uint32_t>(type));
  }
  if (dims.empty() || dims.size() > 4) {
    fail<InvalidArgument>("tensor {} has {} dimensions; GGUF allows 1 to 4", name, dims.size());
  }
  uint64_t rows = 1;
  for (size_t d = 0; d < dims.size(); ++d) {
    if (dims[d] <= 0) fail<InvalidArgument>("tensor {} has dimension {} of size {}", name, d, dims[d]);
    if (d > 0 && __builtin_mul_overflow(rows, static_cast<uint64_t>(dims[d]), &rows)) {
      fail<InvalidArgument>("tensor {} has too many elements", name);
    }
  }
  if (dims[0] % dtype_block_elements(type) != 0) {
    fail<InvalidArgument>("tensor {} has type {} but its first dimension {} is not a multiple of {}", name,
                          dtype_name(type), dims[0], dtype_block_elements(type));
  }
  uint64_t expected = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(dtype_row_bytes(type, dims[0])), rows, &expected)) {
    fail<InvalidArgument>("tensor {} is larger than 2^64 bytes", name);
  }
  if (bytes != expected) {
    fail<InvalidArgument>("tensor {} of type {} needs {} bytes of data, got {}", name, dtype_name(type), expected,
                          bytes);
  }
  if (bytes > 0 && data == nullptr) fail<InvalidArgument>("tensor {} has no data", name);
  const auto* p = static_cast<const std::byte*>(data);
  tensors_.push_back(PendingTensor{name, std::move(dims), type, std::vector<std::byte>(p, p + bytes)});
}

void GgufWriter::write(const std::string& path) const {
  // A writer made with a non-default alignment must say so in the file, or readers would assume 32.
  const bool add_alignment = alignment_ != kGgufDefaultAlignment &&
                             std::none_of(metadata_.begin(), metadata_.end(),
                                          [](const auto& kv) { return kv.first == kAlignmentKey; });
  GgufSink header;
  header.write<uint32_t>(0x46554747);  // "GGUF" read as a little-endian uint32
  header.write<uint32_t>(kVersion);
  header.write<uint64_t>(tensors_.size());
  header.write<uint64_t>(metadata_.size() + (add_alignment ? 1 : 0));
  for (const auto& [key, value] : metadata_) {
    header.write_string(key);
    header.write(static_cast<uint32_t>(value.type()));
    write_value(header, value);
  }
  if (add_alignment) {
    header.write_string(kAlignmentKey);
    header.write(static_cast<uint32_t>(GgufType::UINT32));
    header.write(static_cast<uint32_t>(alignment_));
  }
  uint64_t offset = 0;
  for (const PendingTensor& t : tensors_) {
    header.write_string(t.name);
    header.write(static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) header.write(static_cast<uint64_t>(d));
    header.write(static_cast<uint32_t>(t.type));
    header.write(offset);
    offset = GgufSink::align_up(offset + t.data.size(), alignment_);
  }
  header.pad_to(alignment_);

  const std::string tmp = path + ".tmp";
  std::FILE* file = std::fopen(tmp.c_str(), "wb");
  if (!file) fail<Error>("cannot create {}: {}", tmp, std::strerror(errno));
  static constexpr std::byte kZeros[4096] = {};
  bool ok = write_all(file, header.bytes().data(), header.size());
  for (const PendingTensor& t : tensors_) {
    if (!ok) break;
    const size_t padding = GgufSink::align_up(t.data.size(), alignment_) - t.data.size();
    ok = write_all(file, t.data.data(), t.data.size());
    for (size_t left = padding; ok && left > 0;) {
      const size_t n = std::min(left, sizeof(kZeros));
      ok = write_all(file, kZeros, n);
      left -= n;
    }
  }
  const int write_errno = errno;
  const bool closed = std::fclose(file) == 0;
  if (!ok || !closed) {
    const int err = ok ? errno : write_errno;
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    fail<Error>("cannot write {}: {}", path, std::strerror(err));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    fail<Error>("cannot write {}: renaming {} failed: {}", path, tmp, ec.message());
  }
}

}  // namespace morphserve
