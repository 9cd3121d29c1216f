#pragma once
// safetensors reader (the format of Hugging Face checkpoints): an 8-byte little-endian header
// length N, N bytes of JSON naming each tensor's dtype, shape and [begin, end) byte range in the
// data buffer that follows, then that buffer. Tensor data stays in the mapping; nothing is copied.
// Layout facts follow huggingface/safetensors' README and its reference reader.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "model/safetensors_dtype.h"

namespace morphserve {

// The reference implementation refuses headers over 100 MB; so do we, before parsing them.
inline constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;

// One tensor of a parsed file. The pointers stay valid while the SafetensorsFile (or a copy) lives.
struct SafetensorsTensor {
  std::string name;
  SafetensorsDType stored_type = SafetensorsDType::F32;  // as the header names it
  std::vector<int64_t> shape;  // row-major, outermost first (PyTorch order); [] is a scalar
  uint64_t offset = 0;         // from the start of the data buffer
  size_t bytes = 0;
  const std::byte* raw = nullptr;  // the bytes, whatever their type; may be unaligned for the type
  std::string_view file;           // path of the file, for messages

  int64_t elements() const;
  // True for F32, F16 and BF16, the types morphserve computes with.
  bool supported() const { return to_dtype(stored_type).has_value(); }
  // The morphserve type; throws ModelFileError naming the file and tensor for any other dtype.
  DType dtype() const;
  // The data of a supported tensor (throws like dtype() otherwise).
  std::span<const std::byte> data() const;
};

class SafetensorsFile {
 public:
  // Maps and parses the file. Throws ModelFileError with one sentence naming the file (and the
  // tensor, where one is at fault) for: a header length past the file or over the 100 MB cap, a
  // header that is not a JSON object or repeats a key, an unknown dtype, a shape that is not a list
  // of non-negative integers or overflows, data_offsets that are not two ordered integers, data past
  // the end, a byte size other than elements x dtype size, tensors that overlap or leave a hole in
  // the buffer, and bytes after the last tensor (the format requires the tensors to cover the
  // buffer exactly), and __metadata__ that is not an object of strings.
  static SafetensorsFile open(const std::string& path);
  // Parses an image already in memory (fuzzing, tests), with the same checks and messages as
  // open(); `name` stands for the path in them. The file keeps the bytes.
  static SafetensorsFile parse(std::string name, std::vector<std::byte> bytes);

  const std::string& path() const { return *path_; }
  size_t file_size() const { return bytes_.size(); }
  // Where the data buffer starts: 8 + the header length.
  uint64_t data_offset() const { return data_offset_; }
  // The __metadata__ map (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // Tensors in data-buffer order.
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* find_tensor(std::string_view name) const;
  // Throws ModelFileError("<path> has no tensor <name>") when absent.
  const SafetensorsTensor& tensor(std::string_view name) const;

 private:
  SafetensorsFile() = default;
  static SafetensorsFile parse_image(std::string name, std::shared_ptr<const void> owner,
                                     std::span<const std::byte> bytes);

  std::shared_ptr<const std::string> path_;  // shared so tensors' `file` views survive copies
  std::shared_ptr<const void> owner_;
  std::span<const std::byte> bytes_;
  uint64_t data_offset_ = 0;
  std::map<std::string, std::string> metadata_;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
};

}  // namespace morphserve
