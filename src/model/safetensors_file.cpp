// safetensors parsing. The JSON header is the only variable-size structure and is capped at
// 100 MB before it is parsed; everything it says about the data buffer is checked against the
// buffer's real size, and the tensors must tile the buffer exactly, as the reference reader demands.
#include "model/safetensors_file.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include <fmt/ranges.h>

#include "core/error.h"
#include "core/mapped_file.h"
#include "model/strict_json.h"

namespace morphserve {

namespace {

using nlohmann::json;

// Top-level object, a tensor's entry, its shape or offsets list: nothing in the format nests deeper.
constexpr int kSafetensorsMaxDepth = 3;
// Tensor names and other strings quoted into messages are cut to this many bytes.
constexpr size_t kSafetensorsExcerptBytes = 120;

// A file-supplied string made fit for a one-line message: control characters escaped, long
// strings cut (at a UTF-8 character boundary; the JSON parser has checked the encoding).
std::string st_excerpt(std::string_view s) {
  std::string out;
  size_t end = std::min(s.size(), kSafetensorsExcerptBytes);
  while (end < s.size() && end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  for (size_t i = 0; i < end; ++i) {
    const auto ch = static_cast<unsigned char>(s[i]);
    if (ch < 0x20 || ch == 0x7f) {
      out += fmt::format("\\x{:02x}", ch);
    } else {
      out += static_cast<char>(ch);
    }
  }
  if (end < s.size()) out += "...";
  return out;
}

std::string st_describe(const json& value) { return st_excerpt(value.dump()); }

std::string st_shape_text(const std::vector<int64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

const char* st_article_type(const json& value) {
  switch (value.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "a list";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return "a number";
    default: return "an unexpected value";
  }
}

uint64_t st_read_u64_le(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

std::map<std::string, std::string> st_read_metadata(const std::string& path, const json& value) {
  if (!value.is_object()) {
    fail<ModelFileError>("{} is corrupt: its __metadata__ is {}, not an object of strings", path,
                         st_article_type(value));
  }
  std::map<std::string, std::string> metadata;
  for (const auto& [key, v] : value.items()) {
    if (!v.is_string()) {
      fail<ModelFileError>("{} is corrupt: __metadata__ key \"{}\" is {}, not a string", path, st_excerpt(key),
                           st_article_type(v));
    }
    metadata.emplace(key, v.get<std::string>());
  }
  return metadata;
}

// Checks one tensor's entry against everything but its neighbours; `buffer_size` is the real size
// of the data buffer.
SafetensorsTensor st_read_tensor(const std::string& path, const std::string& name, const json& entry,
                                 uint64_t data_offset, uint64_t buffer_size) {
  const std::string who = st_excerpt(name);
  if (!entry.is_object()) {
    fail<ModelFileError>("{} is corrupt: tensor {} is described by {}, not an object with dtype, shape and "
                         "data_offsets", path, who, st_article_type(entry));
  }
  SafetensorsTensor t;
  t.name = name;

  const auto dtype = entry.find("dtype");
  if (dtype == entry.end()) fail<ModelFileError>("{} is corrupt: tensor {} has no dtype", path, who);
  if (!dtype->is_string()) {
    fail<ModelFileError>("{} is corrupt: tensor {} has dtype {}, which is not a string", path, who,
                         st_describe(*dtype));
  }
  const auto stored = parse_safetensors_dtype(dtype->get_ref<const std::string&>());
  if (!stored) {
    fail<ModelFileError>("{} is corrupt or too new: tensor {} has unknown dtype \"{}\"", path, who,
                         st_excerpt(dtype->get_ref<const std::string&>()));
  }
  t.stored_type = *stored;

  const auto shape = entry.find("shape");
  if (shape == entry.end()) fail<ModelFileError>("{} is corrupt: tensor {} has no shape", path, who);
  if (!shape->is_array()) {
    fail<ModelFileError>("{} is corrupt: tensor {} has shape {}, which is not a list of dimensions", path, who,
                         st_describe(*shape));
  }
  uint64_t elements = 1;
  for (size_t d = 0; d < shape->size(); ++d) {
    const json& dim = (*shape)[d];
    if (!dim.is_number_unsigned()) {
      fail<ModelFileError>("{} is corrupt: tensor {} has dimension {} = {}, which is not a non-negative integer",
                           path, who, d, st_describe(dim));
    }
    const uint64_t size = dim.get<uint64_t>();
    if (size > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
        __builtin_mul_overflow(elements, size, &elements) ||
        elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      fail<ModelFileError>("{} is corrupt: tensor {} has shape {}, whose element count overflows 63 bits", path,
                           who, st_describe(*shape));
    }
    t.shape.push_back(static_cast<int64_t>(size));
  }

  const auto offsets = entry.find("data_offsets");
  if (offsets == entry.end()) fail<ModelFileError>("{} is corrupt: tensor {} has no data_offsets", path, who);
  if (!offsets->is_array() || offsets->size() != 2 || !(*offsets)[0].is_number_unsigned() ||
      !(*offsets)[1].is_number_unsigned()) {
    fail<ModelFileError>("{} is corrupt: tensor {} has data_offsets {}, which is not two non-negative integers "
                         "[begin, end]", path, who, st_describe(*offsets));
  }
  const uint64_t begin = (*offsets)[0].get<uint64_t>();
  const uint64_t end = (*offsets)[1].get<uint64_t>();
  if (end < begin) {
    fail<ModelFileError>("{} is corrupt: tensor {} has data_offsets [{}, {}], which end before they begin", path,
                         who, begin, end);
  }
  if (end > buffer_size) {
    fail<ModelFileError>("{} is truncated: tensor {} needs bytes up to {} but the file has {}", path, who,
                         data_offset + end, data_offset + buffer_size);
  }

  const int bits = safetensors_dtype_bits(t.stored_type);
  uint64_t total_bits = 0;
  if (__builtin_mul_overflow(elements, static_cast<uint64_t>(bits), &total_bits)) {
    fail<ModelFileError>("{} is corrupt: tensor {} of dtype {} and shape {} is larger than 2^64 bits", path, who,
                         safetensors_dtype_name(t.stored_type), st_shape_text(t.shape));
  }
  if (total_bits % 8 != 0) {
    fail<ModelFileError>("{} is corrupt: tensor {} of dtype {} and shape {} takes {} bits, not a whole number of "
                         "bytes", path, who, safetensors_dtype_name(t.stored_type), st_shape_text(t.shape),
                         total_bits);
  }
  if (total_bits / 8 != end - begin) {
    fail<ModelFileError>("{} is corrupt: tensor {} of dtype {} and shape {} needs {} bytes, but its data_offsets "
                         "[{}, {}] hold {}", path, who, safetensors_dtype_name(t.stored_type),
                         st_shape_text(t.shape), total_bits / 8, begin, end, end - begin);
  }
  t.offset = begin;
  t.bytes = static_cast<size_t>(end - begin);
  return t;
}

// The format requires the tensors to tile the data buffer: no overlap (a write through one tensor
// would change another), no hole, nothing after the last one.
void st_check_coverage(const std::string& path, const std::vector<SafetensorsTensor>& tensors,
                       uint64_t buffer_size) {
  uint64_t covered = 0;
  const SafetensorsTensor* previous = nullptr;
  for (const SafetensorsTensor& t : tensors) {
    if (t.offset < covered) {
      fail<ModelFileError>("{} is corrupt: tensors {} and {} overlap ({} ends at byte {} of the data buffer, {} "
                           "begins at byte {})", path, st_excerpt(previous->name), st_excerpt(t.name),
                           st_excerpt(previous->name), covered, st_excerpt(t.name), t.offset);
    }
    if (t.offset > covered) {
      if (previous) {
        fail<ModelFileError>("{} is corrupt: bytes {} to {} of the data buffer, between tensors {} and {}, belong "
                             "to no tensor", path, covered, t.offset, st_excerpt(previous->name),
                             st_excerpt(t.name));
      }
      fail<ModelFileError>("{} is corrupt: bytes 0 to {} of the data buffer, before tensor {}, belong to no tensor",
                           path, t.offset, st_excerpt(t.name));
    }
    covered = t.offset + t.bytes;
    previous = &t;
  }
  if (covered != buffer_size) {
    fail<ModelFileError>("{} is corrupt: it has {} trailing bytes that belong to no tensor (the tensors cover {} of "
                         "the {}-byte data buffer)", path, buffer_size - covered, covered, buffer_size);
  }
}

}  // namespace

int64_t SafetensorsTensor::elements() const {
  int64_t n = 1;
  for (const int64_t d : shape) n *= d;
  return n;
}

DType SafetensorsTensor::dtype() const {
  if (const auto type = to_dtype(stored_type)) return *type;
  fail<ModelFileError>("{}: tensor {} has dtype {}, which morphserve does not support (supported: F32, F16, BF16)",
                       file, st_excerpt(name), safetensors_dtype_name(stored_type));
}

std::span<const std::byte> SafetensorsTensor::data() const {
  (void)dtype();
  return {raw, bytes};
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  auto mapping = std::make_shared<const MappedFile>(path);
  const std::span<const std::byte> bytes = mapping->bytes();
  return parse_image(path, std::move(mapping), bytes);
}

SafetensorsFile SafetensorsFile::parse(std::string name, std::vector<std::byte> bytes) {
  auto buffer = std::make_shared<const std::vector<std::byte>>(std::move(bytes));
  const std::span<const std::byte> view(buffer->data(), buffer->size());
  return parse_image(std::move(name), std::move(buffer), view);
}

SafetensorsFile SafetensorsFile::parse_image(std::string name, std::shared_ptr<const void> owner,
                                             std::span<const std::byte> bytes) {
  SafetensorsFile file;
  file.path_ = std::make_shared<const std::string>(std::move(name));
  file.owner_ = std::move(owner);
  file.bytes_ = bytes;
  const std::string& path = *file.path_;

  if (bytes.size() < 8) {
    fail<ModelFileError>("{} is too short to be a safetensors file ({} bytes; it must start with an 8-byte header "
                         "length)", path, bytes.size());
  }
  const uint64_t header_bytes = st_read_u64_le(bytes.data());
  if (header_bytes > kSafetensorsMaxHeaderBytes) {
    fail<ModelFileError>("{} is not a safetensors file or is corrupt: its header length {} is over the {}-byte limit",
                         path, header_bytes, kSafetensorsMaxHeaderBytes);
  }
  if (header_bytes > bytes.size() - 8) {
    fail<ModelFileError>("{} is truncated: its header length is {} bytes but only {} bytes follow", path,
                         header_bytes, bytes.size() - 8);
  }
  file.data_offset_ = 8 + header_bytes;
  const uint64_t buffer_size = bytes.size() - file.data_offset_;

  const std::string_view text(reinterpret_cast<const char*>(bytes.data()) + 8, static_cast<size_t>(header_bytes));
  const json header = parse_strict_json(text, fmt::format("{} is corrupt: its header", path), kSafetensorsMaxDepth);
  if (!header.is_object()) {
    fail<ModelFileError>("{} is corrupt: its header is {}, not a JSON object", path, st_article_type(header));
  }

  file.tensors_.reserve(header.size());
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      file.metadata_ = st_read_metadata(path, value);
    } else {
      file.tensors_.push_back(st_read_tensor(path, key, value, file.data_offset_, buffer_size));
    }
  }
  std::sort(file.tensors_.begin(), file.tensors_.end(), [](const SafetensorsTensor& a, const SafetensorsTensor& b) {
    if (a.offset != b.offset) return a.offset < b.offset;
    return a.bytes != b.bytes ? a.bytes < b.bytes : a.name < b.name;
  });
  st_check_coverage(path, file.tensors_, buffer_size);

  for (size_t i = 0; i < file.tensors_.size(); ++i) {
    SafetensorsTensor& t = file.tensors_[i];
    t.raw = bytes.data() + file.data_offset_ + t.offset;
    t.file = path;
    file.index_.emplace(t.name, i);
  }
  return file;
}

const SafetensorsTensor* SafetensorsFile::find_tensor(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const SafetensorsTensor& SafetensorsFile::tensor(std::string_view name) const {
  if (const SafetensorsTensor* t = find_tensor(name)) return *t;
  fail<ModelFileError>("{} has no tensor {}", path(), st_excerpt(name));
}

}  // namespace morphserve
