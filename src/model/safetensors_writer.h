#pragma once
// safetensors writer: one file, or a Hugging Face sharded checkpoint (model-0000i-of-0000n.safetensors
// plus model.safetensors.index.json). Used by tests and by tools that turn GGUF models into HF
// checkpoints; what it writes reads back in SafetensorsFile and in Hugging Face's own loaders.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "model/safetensors_dtype.h"

namespace morphserve {

class SafetensorsWriter {
 public:
  // __metadata__ starts as {"format": "pt"}: transformers refuses shards without a format it knows.
  SafetensorsWriter();

  // Adds a tensor; the data is copied. shape is row-major, outermost first ([] is a scalar, a 0
  // dimension an empty tensor). Throws InvalidArgument for a repeated or reserved name, a negative
  // dimension, or bytes other than elements x dtype size.
  void add_tensor(const std::string& name, SafetensorsDType type, std::vector<int64_t> shape, const void* data,
                  size_t bytes);
  // The same for a morphserve type; only F32, F16 and BF16 have safetensors names (InvalidArgument
  // for the quantized ones).
  void add_tensor(const std::string& name, DType type, std::vector<int64_t> shape, const void* data, size_t bytes);

  // Sets or replaces one __metadata__ entry; remove_metadata drops one (an empty map writes none).
  void set_metadata(const std::string& key, const std::string& value);
  void remove_metadata(const std::string& key);

  size_t tensor_count() const { return tensors_.size(); }
  uint64_t data_bytes() const;

  // Writes one file (to a temporary beside it, then renamed). Tensors with wider elements come
  // first, so with the header padded to 8 bytes every tensor starts aligned for its type. Throws
  // Error naming the path on I/O failure.
  void write(const std::string& path) const;
  // Writes the tensors, in the order they were added, into shards of at most max_shard_bytes of
  // data each (a larger tensor gets a shard of its own), named model-00001-of-0000N.safetensors in
  // `dir` (created if missing), and model.safetensors.index.json mapping each tensor to its shard.
  // Returns the shard file names in order.
  std::vector<std::string> write_sharded(const std::string& dir, uint64_t max_shard_bytes) const;

 private:
  struct PendingTensor {
    std::string name;
    SafetensorsDType type;
    std::vector<int64_t> shape;
    std::vector<std::byte> data;
  };
  static void write_file(const std::string& path, std::vector<const PendingTensor*> tensors,
                         const std::map<std::string, std::string>& metadata);

  std::map<std::string, std::string> metadata_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace morphserve
