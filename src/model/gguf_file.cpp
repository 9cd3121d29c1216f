// GGUF parsing. Every count and length from the file is checked against the bytes left before it
// sizes an allocation, so memory stays proportional to the file's size: at worst about 50 bytes
// per file byte, for arrays of one-byte values held as GgufValues.
#include "model/gguf_file.h"

#include <bit>
#include <limits>
#include <unordered_set>

#include "core/error.h"
#include "core/mapped_file.h"
#include "model/gguf_cursor.h"

namespace morphserve {

namespace {

constexpr uint32_t kMaxDims = 4;
// Each nesting level costs a hostile file only 12 bytes; without a limit deep nesting would
// overflow the parser's stack.
constexpr int kMaxArrayDepth = 16;
// Smallest encodings: a metadata entry is key length + type + a one-byte value; a tensor info is
// name length + n_dims + one dim + type + offset.
constexpr uint64_t kMinMetadataEntryBytes = 8 + 4 + 1;
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;

bool is_value_type(uint32_t raw) { return raw <= static_cast<uint32_t>(GgufType::FLOAT64); }

// Fewest bytes one value of this type can take in the file.
uint64_t min_encoded_bytes(GgufType type) {
  switch (type) {
    case GgufType::UINT8:
    case GgufType::INT8:
    case GgufType::BOOL:
      return 1;
    case GgufType::UINT16:
    case GgufType::INT16:
      return 2;
    case GgufType::UINT32:
    case GgufType::INT32:
    case GgufType::FLOAT32:
      return 4;
    case GgufType::UINT64:
    case GgufType::INT64:
    case GgufType::FLOAT64:
    case GgufType::STRING:
      return 8;
    case GgufType::ARRAY:
      return 12;
  }
  return 1;
}

GgufValue read_value(GgufCursor& c, GgufType type, int depth);

GgufValue read_array(GgufCursor& c, int depth) {
  if (depth >= kMaxArrayDepth) {
    fail<ModelFileError>("{} is corrupt: {} nests arrays more than {} deep", c.path(), c.context(), kMaxArrayDepth);
  }
  const uint32_t raw = c.read<uint32_t>();
  if (!is_value_type(raw)) {
    fail<ModelFileError>("{} is corrupt: {} is an array of unknown value type {}", c.path(), c.context(), raw);
  }
  const auto element_type = static_cast<GgufType>(raw);
  const uint64_t count = c.read<uint64_t>();
  if (count > c.remaining() / min_encoded_bytes(element_type)) {
    fail<ModelFileError>(
        "{} is truncated or corrupt: {} claims {} {} elements, which cannot fit in the {} bytes left in the file",
        c.path(), c.context(), count, gguf_type_name(element_type), c.remaining());
  }
  GgufValue::Array elements;
  elements.reserve(static_cast<size_t>(count));
  for (uint64_t i = 0; i < count; ++i) elements.push_back(read_value(c, element_type, depth + 1));
  return GgufValue::array(element_type, std::move(elements));
}

GgufValue read_value(GgufCursor& c, GgufType type, int depth) {
  switch (type) {
    case GgufType::UINT8: return GgufValue::u8(c.read<uint8_t>());
    case GgufType::INT8: return GgufValue::i8(c.read<int8_t>());
    case GgufType::UINT16: return GgufValue::u16(c.read<uint16_t>());
    case GgufType::INT16: return GgufValue::i16(c.read<int16_t>());
    case GgufType::UINT32: return GgufValue::u32(c.read<uint32_t>());
    case GgufType::INT32: return GgufValue::i32(c.read<int32_t>());
    case GgufType::FLOAT32: return GgufValue::f32(c.read<float>());
    // llama.cpp reads any nonzero byte as true; so do we, rather than reject its files.
    case GgufType::BOOL: return GgufValue::boolean(c.read<uint8_t>() != 0);
    case GgufType::STRING: return GgufValue::string(c.read_string());
    case GgufType::ARRAY: return read_array(c, depth);
    case GgufType::UINT64: return GgufValue::u64(c.read<uint64_t>());
    case GgufType::INT64: return GgufValue::i64(c.read<int64_t>());
    case GgufType::FLOAT64: return GgufValue::f64(c.read<double>());
  }
  fail<ModelFileError>("{} is corrupt: {} has unknown value type {}", c.path(), c.context(),
                       static_cast<uint32_t>(type));
}

uint64_t saturating_add(uint64_t a, uint64_t b) {
  uint64_t sum = 0;
  return __builtin_add_overflow(a, b, &sum) ? std::numeric_limits<uint64_t>::max() : sum;
}

// The first four bytes as a C-style string literal, for the wrong-magic message.
std::string quote_magic(const std::byte* p) {
  std::string out = "\"";
  for (int i = 0; i < 4; ++i) {
    const auto ch = static_cast<unsigned char>(p[i]);
    if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') {
      out += static_cast<char>(ch);
    } else {
      out += fmt::format("\\x{:02x}", ch);
    }
  }
  return out + "\"";
}

void check_version(const std::string& path, uint32_t version) {
  if (version == 2 || version == 3) return;
  const uint32_t swapped = __builtin_bswap32(version);  // std::byteswap is C++23
  if (swapped == 2 || swapped == 3) {
    fail<ModelFileError>("{} is a big-endian GGUF file (version {}), which morphserve does not support", path,
                         swapped);
  }
  if (version == 1) {
    fail<ModelFileError>(
        "{} uses GGUF version 1, which morphserve does not support (supported: 2, 3); re-convert it with a "
        "current llama.cpp",
        path, version);
  }
  fail<ModelFileError>("{} uses GGUF version {}, which morphserve does not support (supported: 2, 3)", path,
                       version);
}

uint64_t read_alignment(const std::string& path, const GgufValue* value) {
  if (!value) return kGgufDefaultAlignment;
  // llama.cpp insists on uint32 here too, so a file we accept is one it accepts.
  if (value->type() != GgufType::UINT32) {
    fail<ModelFileError>("{} is corrupt: general.alignment must be a uint32, but it has type {}", path,
                         gguf_type_name(value->type()));
  }
  const uint64_t alignment = value->as_uint();
  if (!std::has_single_bit(alignment)) {
    fail<ModelFileError>("{} is corrupt: general.alignment is {}, which is not a nonzero power of two", path,
                         alignment);
  }
  return alignment;
}

// Reads one tensor info and checks everything that does not depend on the data section.
GgufTensorInfo read_tensor_info(GgufCursor& c, uint64_t alignment, uint64_t index) {
  const std::string& path = c.path();
  c.set_context(fmt::format("tensor info {}", index));
  GgufTensorInfo t;
  t.name = c.read_string();
  c.set_context(fmt::format("tensor {}", t.name));
  const uint32_t n_dims = c.read<uint32_t>();
  if (n_dims < 1 || n_dims > kMaxDims) {
    fail<ModelFileError>("{} is corrupt: tensor {} has {} dimensions, but GGUF allows 1 to {}", path, t.name,
                         n_dims, kMaxDims);
  }
  uint64_t elements = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    const uint64_t dim = c.read<uint64_t>();
    if (dim == 0 || dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      fail<ModelFileError>("{} is corrupt: tensor {} has dimension {} of size {}, which is {}", path, t.name, d,
                           dim, dim == 0 ? "empty" : "negative or too large");
    }
    if (__builtin_mul_overflow(elements, dim, &elements) ||
        elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      fail<ModelFileError>("{} is corrupt: tensor {} has too many elements (the dimensions overflow 64 bits)",
                           path, t.name);
    }
    t.dims.push_back(static_cast<int64_t>(dim));
  }
  const uint32_t raw_type = c.read<uint32_t>();
  if (!is_known_dtype(raw_type)) {
    std::string type = ggml_type_name(raw_type);
    if (type.starts_with("type ")) type = fmt::format("id {} (not a GGML type)", raw_type);
    fail<ModelFileError>("{}: tensor {} has type {}, which morphserve does not support (supported: f32, f16, "
                         "bf16, q8_0, q4_0, q4_K, q5_K, q6_K)",
                         path, t.name, type);
  }
  t.type = static_cast<DType>(raw_type);
  const int64_t block = dtype_block_elements(t.type);
  if (t.dims[0] % block != 0) {
    fail<ModelFileError>("{} is corrupt: tensor {} has type {} but its first dimension {} is not a multiple of {}",
                         path, t.name, dtype_name(t.type), t.dims[0], block);
  }
  // Blocks times block size, checked in one step: a row's size alone can already wrap (a first
  // dimension of 2^62 f32 values is 2^64 bytes), which made such a tensor 0 bytes long.
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(elements / static_cast<uint64_t>(block), dtype_block_bytes(t.type), &bytes)) {
    fail<ModelFileError>("{} is corrupt: tensor {} is larger than 2^64 bytes", path, t.name);
  }
  t.bytes = static_cast<size_t>(bytes);
  t.offset = c.read<uint64_t>();
  if (t.offset % alignment != 0) {
    fail<ModelFileError>("{} is corrupt: tensor {} has offset {}, which is not a multiple of the alignment {}", path,
                         t.name, t.offset, alignment);
  }
  return t;
}

}  // namespace

GgufFile GgufFile::open(const std::string& path) {
  auto mapping = std::make_shared<const MappedFile>(path);
  const std::span<const std::byte> bytes = mapping->bytes();
  return parse_image(path, std::move(mapping), bytes);
}

GgufFile GgufFile::parse(std::string name, std::vector<std::byte> bytes) {
  auto buffer = std::make_shared<const std::vector<std::byte>>(std::move(bytes));
  const std::span<const std::byte> view(buffer->data(), buffer->size());
  return parse_image(std::move(name), std::move(buffer), view);
}

GgufFile GgufFile::parse_image(std::string name, std::shared_ptr<const void> owner,
                               std::span<const std::byte> bytes) {
  GgufFile file;
  file.path_ = std::move(name);
  file.owner_ = std::move(owner);
  file.bytes_ = bytes;
  const std::string& path = file.path_;
  if (bytes.empty()) fail<ModelFileError>("{} is empty, not a GGUF file", path);
  GgufCursor c(bytes, path);

  c.set_context("the header");
  if (bytes.size() >= 4 && quote_magic(bytes.data()) != "\"GGUF\"") {
    fail<ModelFileError>("{} is not a GGUF file (magic {}, expected \"GGUF\")", path, quote_magic(bytes.data()));
  }
  c.read<uint32_t>();  // the magic, checked above
  file.version_ = c.read<uint32_t>();
  check_version(path, file.version_);
  const uint64_t tensor_count = c.read<uint64_t>();
  const uint64_t kv_count = c.read<uint64_t>();
  if (kv_count > c.remaining() / kMinMetadataEntryBytes) {
    fail<ModelFileError>("{} is truncated or corrupt: the header claims {} metadata entries, which cannot fit in the "
                         "{} bytes left in the file", path, kv_count, c.remaining());
  }

  std::unordered_set<std::string> keys;
  file.metadata_.reserve(static_cast<size_t>(kv_count));
  for (uint64_t i = 0; i < kv_count; ++i) {
    c.set_context(fmt::format("metadata entry {}", i));
    std::string key = c.read_string();
    if (!keys.insert(key).second) fail<ModelFileError>("{} is corrupt: metadata key {} appears twice", path, key);
    c.set_context(fmt::format("metadata key {}", key));
    const uint32_t raw_type = c.read<uint32_t>();
    if (!is_value_type(raw_type)) {
      fail<ModelFileError>("{} is corrupt: metadata key {} has unknown value type {}", path, key, raw_type);
    }
    GgufValue value = read_value(c, static_cast<GgufType>(raw_type), 0);
    file.metadata_.emplace_back(std::move(key), std::move(value));
  }
  file.alignment_ = read_alignment(path, file.find("general.alignment"));

  if (tensor_count > c.remaining() / kMinTensorInfoBytes) {
    fail<ModelFileError>("{} is truncated or corrupt: the header claims {} tensors, which cannot fit in the {} bytes "
                         "left in the file", path, tensor_count, c.remaining());
  }
  std::unordered_set<std::string> names;
  file.tensors_.reserve(static_cast<size_t>(tensor_count));
  for (uint64_t i = 0; i < tensor_count; ++i) {
    GgufTensorInfo t = read_tensor_info(c, file.alignment_, i);
    if (!names.insert(t.name).second) {
      fail<ModelFileError>("{} is corrupt: tensor name {} appears twice", path, t.name);
    }
    file.tensors_.push_back(std::move(t));
  }

  // The data section may start past the end of a file without tensors (vocab-only files end
  // right after the header, unpadded).
  file.data_offset_ = GgufSink::align_up(c.position(), file.alignment_);
  for (GgufTensorInfo& t : file.tensors_) {
    const uint64_t room = bytes.size() > file.data_offset_ ? bytes.size() - file.data_offset_ : 0;
    if (t.offset > room || t.bytes > room - t.offset) {
      fail<ModelFileError>("{} is truncated: tensor {} needs bytes up to {} but the file has {}", path, t.name,
                           saturating_add(saturating_add(file.data_offset_, t.offset), t.bytes), bytes.size());
    }
    t.data = bytes.data() + file.data_offset_ + t.offset;
  }
  return file;
}

size_t GgufFile::file_size() const { return bytes_.size(); }

const GgufValue* GgufFile::find(std::string_view key) const {
  for (const auto& [k, v] : metadata_) {
    if (k == key) return &v;
  }
  return nullptr;
}

const GgufValue& GgufFile::get(std::string_view key) const {
  if (const GgufValue* v = find(key)) return *v;
  fail<ModelFileError>("{} has no metadata key {}", path_, key);
}

namespace {

// Runs a checked accessor and, when it throws, names the file and key in the message. The
// accessors' messages all start with "metadata value ", which the key's name replaces.
template <typename Access>
auto access_key(const std::string& path, std::string_view key, const GgufValue& value, Access access) {
  try {
    return access(value);
  } catch (const ModelFileError& e) {
    std::string_view what = e.what();
    constexpr std::string_view kPrefix = "metadata value ";
    if (what.starts_with(kPrefix)) what.remove_prefix(kPrefix.size());
    fail<ModelFileError>("{}: metadata key {} {}", path, key, what);
  }
}

}  // namespace

std::string GgufFile::get_string(std::string_view key) const {
  return access_key(path_, key, get(key), [](const GgufValue& v) { return v.as_string(); });
}

uint64_t GgufFile::get_uint(std::string_view key) const {
  return access_key(path_, key, get(key), [](const GgufValue& v) { return v.as_uint(); });
}

std::optional<uint64_t> GgufFile::get_uint_opt(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  return access_key(path_, key, *v, [](const GgufValue& x) { return x.as_uint(); });
}

std::optional<double> GgufFile::get_float_opt(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  return access_key(path_, key, *v, [](const GgufValue& x) { return x.as_float(); });
}

std::optional<bool> GgufFile::get_bool_opt(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  return access_key(path_, key, *v, [](const GgufValue& x) { return x.as_bool(); });
}

std::optional<std::string> GgufFile::get_string_opt(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  return access_key(path_, key, *v, [](const GgufValue& x) { return x.as_string(); });
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  for (const GgufTensorInfo& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

int64_t GgufTensorInfo::elements() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

}  // namespace morphserve
