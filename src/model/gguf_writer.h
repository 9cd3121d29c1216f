#pragma once
// GGUF version 3 writer: metadata, tensor infos, aligned tensor data. Used for quantized-replica
// files, dummy models and tests. Files it writes load in llama.cpp as long as they avoid nested
// arrays, which ggml's reader does not take.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "model/gguf_file.h"

namespace morphserve {

class GgufWriter {
 public:
  explicit GgufWriter(uint64_t alignment = kGgufDefaultAlignment);

  // Sets or replaces a metadata value (insertion order is kept). "general.alignment" is written
  // from the constructor's alignment.
  void set(const std::string& key, GgufValue value);
  // Adds a tensor; data is copied. dims are in ggml order (dims[0] contiguous). bytes must equal
  // the size implied by dims and type (InvalidArgument otherwise).
  void add_tensor(const std::string& name, std::vector<int64_t> dims, DType type, const void* data, size_t bytes);

  // Writes the whole file (to a temporary beside it, then renamed, so readers never see half a
  // file). Throws Error naming the path on I/O failure.
  void write(const std::string& path) const;

 private:
  struct PendingTensor {
    std::string name;
    std::vector<int64_t> dims;
    DType type;
    std::vector<std::byte> data;
  };
  uint64_t alignment_;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace morphserve
