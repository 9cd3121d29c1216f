#pragma once
// GGUF (versions 2 and 3) reader: metadata of every value type, including nested arrays, tensor
// infos and tensor data in a memory mapping (or an image already in memory). Layout facts follow
// ggml's gguf.md; nothing is copied.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/dtype.h"

namespace morphserve {

enum class GgufType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
std::string_view gguf_type_name(GgufType type);

// One metadata value. Arrays hold their elements as GgufValues of one element type (which may
// itself be ARRAY: nested arrays).
class GgufValue {
 public:
  using Array = std::vector<GgufValue>;

  GgufValue() = default;
  static GgufValue u8(uint8_t v) { return {GgufType::UINT8, static_cast<uint64_t>(v)}; }
  static GgufValue i8(int8_t v) { return {GgufType::INT8, static_cast<int64_t>(v)}; }
  static GgufValue u16(uint16_t v) { return {GgufType::UINT16, static_cast<uint64_t>(v)}; }
  static GgufValue i16(int16_t v) { return {GgufType::INT16, static_cast<int64_t>(v)}; }
  static GgufValue u32(uint32_t v) { return {GgufType::UINT32, static_cast<uint64_t>(v)}; }
  static GgufValue i32(int32_t v) { return {GgufType::INT32, static_cast<int64_t>(v)}; }
  static GgufValue u64(uint64_t v) { return {GgufType::UINT64, v}; }
  static GgufValue i64(int64_t v) { return {GgufType::INT64, v}; }
  static GgufValue f32(float v) { return {GgufType::FLOAT32, static_cast<double>(v)}; }
  static GgufValue f64(double v) { return {GgufType::FLOAT64, v}; }
  static GgufValue boolean(bool v) { return {GgufType::BOOL, v}; }
  static GgufValue string(std::string v) { return {GgufType::STRING, std::move(v)}; }
  // All elements must have element_type (checked; throws InvalidArgument otherwise).
  static GgufValue array(GgufType element_type, Array elements);

  GgufType type() const { return type_; }
  // Element type of an ARRAY value.
  GgufType element_type() const { return element_type_; }
  bool is_integer() const;
  bool is_float() const { return type_ == GgufType::FLOAT32 || type_ == GgufType::FLOAT64; }

  // Checked accessors: throw ModelFileError ("... is a string, expected an integer") on a type
  // mismatch or when the value does not fit.
  uint64_t as_uint() const;
  int64_t as_int() const;
  double as_float() const;  // any integer or float type
  bool as_bool() const;
  const std::string& as_string() const;
  const Array& as_array() const;

  bool operator==(const GgufValue& other) const = default;

 private:
  using Storage = std::variant<std::monostate, uint64_t, int64_t, double, bool, std::string, Array>;
  GgufValue(GgufType type, Storage value) : type_(type), value_(std::move(value)) {}

  GgufType type_ = GgufType::UINT8;
  GgufType element_type_ = GgufType::UINT8;
  Storage value_;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> dims;    // ggml order: dims[0] (ne0) is the contiguous one
  DType type = DType::F32;
  uint64_t offset = 0;          // from the start of the data section
  size_t bytes = 0;             // size of the tensor data
  const std::byte* data = nullptr;  // inside the mapping

  int64_t elements() const;
};

// Tensor data alignment when a file has no general.alignment key (the GGUF specification's).
inline constexpr uint64_t kGgufDefaultAlignment = 32;

class GgufFile {
 public:
  // Maps and parses the file. Throws ModelFileError with one clear sentence naming the file for:
  // wrong magic, unsupported version, truncated header or metadata, unknown value or tensor type,
  // bad alignment, duplicate keys or tensor names, and any tensor whose data lies past the end.
  static GgufFile open(const std::string& path);
  // Parses a GGUF image already in memory (fuzzing, tests), with the same checks and messages as
  // open(); `name` stands for the path in them. The file keeps the bytes, so tensor data stays valid.
  static GgufFile parse(std::string name, std::vector<std::byte> bytes);

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  size_t file_size() const;

  // Metadata in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
  const GgufValue* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }
  // Typed look-ups. The plain forms throw ModelFileError("... has no metadata key K") when absent.
  const GgufValue& get(std::string_view key) const;
  std::string get_string(std::string_view key) const;
  uint64_t get_uint(std::string_view key) const;
  std::optional<uint64_t> get_uint_opt(std::string_view key) const;
  std::optional<double> get_float_opt(std::string_view key) const;
  std::optional<bool> get_bool_opt(std::string_view key) const;
  std::optional<std::string> get_string_opt(std::string_view key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;

 private:
  GgufFile() = default;
  // Both entry points end here: `owner` keeps `bytes` alive (a mapping or a buffer).
  static GgufFile parse_image(std::string name, std::shared_ptr<const void> owner, std::span<const std::byte> bytes);

  std::string path_;
  std::shared_ptr<const void> owner_;
  std::span<const std::byte> bytes_;
  uint32_t version_ = 0;
  uint64_t alignment_ = kGgufDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<GgufTensorInfo> tensors_;
};

}  // namespace morphserve
