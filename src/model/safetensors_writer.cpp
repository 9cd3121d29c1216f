#include "model/safetensors_writer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace morphserve {

namespace {

bool st_write_all(std::FILE* file, const void* data, size_t bytes) {
  return bytes == 0 || std::fwrite(data, 1, bytes, file) == bytes;
}

// Writes `chunks` to `path` through `path.tmp` and a rename, so a reader never sees half a file.
void st_write_atomically(const std::string& path, const std::vector<std::string_view>& chunks) {
  const std::string tmp = path + ".tmp";
  std::FILE* file = std::fopen(tmp.c_str(), "wb");
  if (!file) fail<Error>("cannot create {}: {}", tmp, std::strerror(errno));
  bool ok = true;
  for (const std::string_view chunk : chunks) {
    if (!(ok = st_write_all(file, chunk.data(), chunk.size()))) break;
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

std::string st_dump(const nlohmann::ordered_json& value, std::string_view what) {
  try {
    return value.dump();
  } catch (const nlohmann::json::exception&) {
    fail<InvalidArgument>("cannot write {}: a tensor name or metadata string is not valid UTF-8", what);
  }
}

}  // namespace

SafetensorsWriter::SafetensorsWriter() { metadata_["format"] = "pt"; }

void SafetensorsWriter::add_tensor(const std::string& name, SafetensorsDType type, std::vector<int64_t> shape,
                                   const void* data, size_t bytes) {
  if (name == "__metadata__") fail<InvalidArgument>("__metadata__ is reserved and cannot name a safetensors tensor");
  for (const PendingTensor& t : tensors_) {
    if (t.name == name) fail<InvalidArgument>("tensor {} was added to the safetensors writer twice", name);
  }
  uint64_t elements = 1;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] < 0) fail<InvalidArgument>("tensor {} has dimension {} of size {}", name, d, shape[d]);
    if (__builtin_mul_overflow(elements, static_cast<uint64_t>(shape[d]), &elements) ||
        elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      fail<InvalidArgument>("tensor {} has too many elements", name);
    }
  }
  uint64_t bits = 0;
  const auto element_bits = static_cast<uint64_t>(safetensors_dtype_bits(type));
  if (__builtin_mul_overflow(elements, element_bits, &bits) || bits % 8 != 0) {
    fail<InvalidArgument>("tensor {} of dtype {} has {} elements, which is not a whole number of bytes", name,
                          safetensors_dtype_name(type), elements);
  }
  if (bits / 8 != bytes) {
    fail<InvalidArgument>("tensor {} of dtype {} needs {} bytes of data, got {}", name, safetensors_dtype_name(type),
                          bits / 8, bytes);
  }
  if (bytes > 0 && data == nullptr) fail<InvalidArgument>("tensor {} has no data", name);
  const auto* begin = static_cast<const std::byte*>(data);
  tensors_.push_back({name, type, std::move(shape), std::vector<std::byte>(begin, begin + bytes)});
}

void SafetensorsWriter::add_tensor(const std::string& name, DType type, std::vector<int64_t> shape, const void* data,
                                   size_t bytes) {
  const auto stored = to_safetensors_dtype(type);
  if (!stored) {
    fail<InvalidArgument>("tensor {} has type {}, which safetensors cannot store (F32, F16 and BF16 only)", name,
                          dtype_name(type));
  }
  add_tensor(name, *stored, std::move(shape), data, bytes);
}

void SafetensorsWriter::set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

void SafetensorsWriter::remove_metadata(const std::string& key) { metadata_.erase(key); }

uint64_t SafetensorsWriter::data_bytes() const {
  uint64_t total = 0;
  for (const PendingTensor& t : tensors_) total += t.data.size();
  return total;
}

void SafetensorsWriter::write_file(const std::string& path, std::vector<const PendingTensor*> tensors,
                                   const std::map<std::string, std::string>& metadata) {
  std::stable_sort(tensors.begin(), tensors.end(), [](const PendingTensor* a, const PendingTensor* b) {
    return safetensors_dtype_bits(a->type) > safetensors_dtype_bits(b->type);
  });
  // Insertion-ordered JSON: __metadata__ first, then the tensors in buffer order, as people read it.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const PendingTensor* t : tensors) {
    header[t->name] = {{"dtype", safetensors_dtype_name(t->type)},
                       {"shape", t->shape},
                       {"data_offsets", {offset, offset + t->data.size()}}};
    offset += t->data.size();
  }
  std::string text = st_dump(header, path);
  text.resize((text.size() + 7) / 8 * 8, ' ');  // JSON allows trailing spaces; the data starts 8-aligned
  std::string length(8, '\0');
  for (int i = 0; i < 8; ++i) length[i] = static_cast<char>((text.size() >> (8 * i)) & 0xff);

  std::vector<std::string_view> chunks = {length, text};
  for (const PendingTensor* t : tensors) {
    chunks.emplace_back(reinterpret_cast<const char*>(t->data.data()), t->data.size());
  }
  st_write_atomically(path, chunks);
}

void SafetensorsWriter::write(const std::string& path) const {
  std::vector<const PendingTensor*> all;
  for (const PendingTensor& t : tensors_) all.push_back(&t);
  write_file(path, std::move(all), metadata_);
}

std::vector<std::string> SafetensorsWriter::write_sharded(const std::string& dir, uint64_t max_shard_bytes) const {
  std::vector<std::vector<const PendingTensor*>> shards;
  uint64_t shard_bytes = 0;
  for (const PendingTensor& t : tensors_) {
    if (shards.empty() || (!shards.back().empty() && shard_bytes + t.data.size() > max_shard_bytes)) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(&t);
    shard_bytes += t.data.size();
  }
  if (shards.empty()) shards.emplace_back();  // a checkpoint without tensors still has one (empty) shard

  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail<Error>("cannot create {}: {}", dir, ec.message());

  std::vector<std::string> names;
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  std::vector<std::pair<std::string, std::string>> entries;
  for (size_t i = 0; i < shards.size(); ++i) {
    names.push_back(fmt::format("model-{:05}-of-{:05}.safetensors", i + 1, shards.size()));
    for (const PendingTensor* t : shards[i]) entries.emplace_back(t->name, names.back());
    write_file((std::filesystem::path(dir) / names.back()).string(), shards[i], metadata_);
  }
  std::sort(entries.begin(), entries.end());  // Hugging Face's indexes list tensors by name
  for (auto& [tensor, shard] : entries) weight_map[tensor] = shard;
  nlohmann::ordered_json index = {{"metadata", {{"total_size", data_bytes()}}}, {"weight_map", weight_map}};
  const std::string index_path = (std::filesystem::path(dir) / "model.safetensors.index.json").string();
  const std::string text = st_dump(index, index_path) + "\n";
  st_write_atomically(index_path, {text});
  return names;
}

}  // namespace morphserve
