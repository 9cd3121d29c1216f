// The replica GGUF: the quantized rungs of every layer, written once (`morphserve quantize`, or
// `serve` on first start) and memory-mapped afterwards.
//
// Layout (GGUF v3, alignment 64):
//   metadata
//     general.architecture                  string  "morphserve.replicas"
//     general.alignment                     uint32  64
//     morphserve.replicas.format_version    uint32  1 (bumped when this layout changes)
//     morphserve.replicas.layer_count       uint32  decoder layers of the model
//     morphserve.replicas.source.file_name  string  the model's file name (for people; not checked)
//     morphserve.replicas.source.file_size  uint64  size of the model file in bytes
//     morphserve.replicas.source.hash       uint64  FNV-1a of the model's header (see model_fingerprint)
//   tensors, layer by layer, then rung by rung (q8_0 before q4_0), in LayerLinears order:
//     "<rung>/<model tensor name>", e.g. "q8_0/blk.0.attn_q.weight", "q4_0/blk.0.ffn_down.weight",
//     with the model tensor's dims ([cols, rows]) and the rung's type.
// Only matrices that a rung changes are stored: full precision is read from the model file, and a
// matrix that keeps its stored type on a rung (a width that is not a multiple of 32; a matrix
// already stored that small) is read from the model file on that rung too.
//
// The file is streamed: one matrix is quantized and written at a time (the offsets are known from
// the shapes up front), so writing the replicas of a 7B model needs one matrix of memory, not the
// ~11 GB that GgufWriter would hold. It goes to OUT.tmp.<pid> and is renamed into place after an
// fsync, so a crash or a concurrent writer never leaves a half file under the final name.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string_view>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "core/mapped_file.h"
#include "model/gguf_cursor.h"
#include "morph/replica_file.h"
#include "morph/replica_layout.h"
#include "quant/quantize.h"

namespace morphserve {

namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
constexpr uint32_t kGgufVersion = 3;
constexpr uint64_t kAlignment = 64;
constexpr uint32_t kFormatVersion = 1;
constexpr std::string_view kArchitecture = "morphserve.replicas";
constexpr const char* kKeyArchitecture = "general.architecture";
constexpr const char* kKeyAlignment = "general.alignment";
constexpr const char* kKeyFormatVersion = "morphserve.replicas.format_version";
constexpr const char* kKeyLayerCount = "morphserve.replicas.layer_count";
constexpr const char* kKeySourceName = "morphserve.replicas.source.file_name";
constexpr const char* kKeySourceSize = "morphserve.replicas.source.file_size";
constexpr const char* kKeySourceHash = "morphserve.replicas.source.hash";
// Bytes of each tensor's data folded into the fingerprint: a page or two per tensor at most.
constexpr size_t kSampledTensorBytes = 256;

struct PlannedTensor {
  std::string name;
  MatrixView source;  // the model's matrix, converted when written
  DType type;
  uint64_t offset = 0;  // from the start of the data section
  size_t bytes = 0;
};

// Every tensor the replica file of these layers holds, in file order, with its offset.
std::vector<PlannedTensor> planned_tensors(const ModelLayers& layers) {
  std::vector<PlannedTensor> tensors;
  uint64_t offset = 0;
  for (size_t l = 0; l < layers.stored.size(); ++l) {
    const std::vector<DType>& ladder = layers.ladders[l];
    for (size_t r = 1; r < ladder.size(); ++r) {
      for (size_t i = 0; i < LayerLinears::kCount; ++i) {
        const MatrixView& source = layers.stored[l].m[i];
        const DType type = replica_type(source, ladder[r]);
        if (type == source.type) continue;
        PlannedTensor t{replica_tensor_name(ladder[r], layers.names[l][i]), source, type};
        t.bytes = dtype_row_bytes(type, source.cols) * static_cast<size_t>(source.rows);
        t.offset = offset;
        offset = GgufSink::align_up(offset + t.bytes, kAlignment);
        tensors.push_back(std::move(t));
      }
    }
  }
  return tensors;
}

void put_key(GgufSink& out, std::string_view key, GgufType type) {
  out.write_string(key);
  out.write(static_cast<uint32_t>(type));
}

std::vector<std::byte> header_bytes(const GgufFile& model, const ModelLayers& layers,
                                    const std::vector<PlannedTensor>& tensors) {
  const ModelFingerprint fingerprint = model_fingerprint(model);
  GgufSink out;
  out.write(kGgufMagic);
  out.write(kGgufVersion);
  out.write<uint64_t>(tensors.size());
  out.write<uint64_t>(7);  // metadata entries below
  put_key(out, kKeyArchitecture, GgufType::STRING);
  out.write_string(kArchitecture);
  put_key(out, kKeyAlignment, GgufType::UINT32);
  out.write(static_cast<uint32_t>(kAlignment));
  put_key(out, kKeyFormatVersion, GgufType::UINT32);
  out.write(kFormatVersion);
  put_key(out, kKeyLayerCount, GgufType::UINT32);
  out.write(static_cast<uint32_t>(layers.stored.size()));
  put_key(out, kKeySourceName, GgufType::STRING);
  out.write_string(std::filesystem::path(model.path()).filename().string());
  put_key(out, kKeySourceSize, GgufType::UINT64);
  out.write(fingerprint.file_size);
  put_key(out, kKeySourceHash, GgufType::UINT64);
  out.write(fingerprint.hash);
  for (const PlannedTensor& t : tensors) {
    out.write_string(t.name);
    out.write<uint32_t>(2);
    out.write<uint64_t>(static_cast<uint64_t>(t.source.cols));
    out.write<uint64_t>(static_cast<uint64_t>(t.source.rows));
    out.write(static_cast<uint32_t>(t.type));
    out.write(t.offset);
  }
  out.pad_to(kAlignment);
  return out.bytes();
}

// The temporary file being written; removed unless committed, so no failure leaves it behind.
class TempFile {
 public:
  explicit TempFile(const std::string& final_path)
      : final_path_(final_path), path_(fmt::format("{}.tmp.{}", final_path, ::getpid())) {
    file_ = std::fopen(path_.c_str(), "wb");
    if (!file_) {
      fail<InvalidArgument>("cannot write the replica file {}: creating {} failed: {}; write it somewhere writable "
                            "with `morphserve quantize -m MODEL -o FILE`",
                            final_path_, path_, std::strerror(errno));
    }
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (file_) std::fclose(file_);
    if (!committed_) {
      std::error_code ignored;
      std::filesystem::remove(path_, ignored);
    }
  }

  void write(const void* data, size_t size) {
    if (size > 0 && std::fwrite(data, 1, size, file_) != size) fail_io("writing");
  }
  void pad(size_t size) {
    static constexpr std::byte kZeros[kAlignment] = {};
    write(kZeros, size);
  }
  // Flushes to disk and renames into place: after a crash the final name holds either the old file
  // or the whole new one.
  void commit() {
    if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0) fail_io("flushing");
    const int closed = std::fclose(file_);
    file_ = nullptr;
    if (closed != 0) fail_io("closing");
    if (std::rename(path_.c_str(), final_path_.c_str()) != 0) fail_io("renaming");
    committed_ = true;
  }

 private:
  [[noreturn]] void fail_io(const char* what) const {
    fail<InvalidArgument>("cannot write the replica file {}: {} {} failed: {}", final_path_, what, path_,
                          std::strerror(errno));
  }

  std::string final_path_;
  std::string path_;
  std::FILE* file_ = nullptr;
  bool committed_ = false;
};

std::string show_dims(const std::vector<int64_t>& dims) { return fmt::format("[{}]", fmt::join(dims, ", ")); }

}  // namespace

uint64_t fnv1a64(const void* data, size_t size, uint64_t hash) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) {
    hash ^= p[i];
    hash *= 0x100000001b3ull;
  }
  return hash;
}

ModelFingerprint model_fingerprint(const GgufFile& model) {
  // A second mapping of the same file: GgufFile does not expose its raw bytes, and mapping is free.
  const MappedFile file(model.path());
  ModelFingerprint fingerprint;
  fingerprint.file_size = file.size();
  const size_t header = std::min<size_t>(model.data_offset(), file.size());
  fingerprint.hash = fnv1a64(file.data(), header);
  for (const GgufTensorInfo& t : model.tensors()) {
    fingerprint.hash = fnv1a64(t.data, std::min(t.bytes, kSampledTensorBytes), fingerprint.hash);
  }
  return fingerprint;
}

void write_replica_file_for(const GgufFile& model, const ModelLayers& layers, const std::string& out_path,
                            ThreadPool& pool, const ProgressFn& progress) {
  // The rename would put the replicas where the model was, destroying the file they come from.
  std::error_code ec;
  if (std::filesystem::equivalent(model.path(), out_path, ec)) {
    fail<InvalidArgument>("cannot write the replica file {}: it is the model file itself; choose another path",
                          out_path);
  }
  std::vector<PlannedTensor> tensors = planned_tensors(layers);
  const std::vector<std::byte> header = header_bytes(model, layers, tensors);
  TempFile out(out_path);
  out.write(header.data(), header.size());
  if (progress) progress(0, tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const PlannedTensor& t = tensors[i];
    const AlignedBuffer data = convert_matrix(t.source, t.type, &pool);
    if (data.size() != t.bytes) {
      fail<Error>("internal error: {} converted to {} bytes, expected {}", t.name, data.size(), t.bytes);
    }
    out.write(data.data(), data.size());
    out.pad(GgufSink::align_up(t.bytes, kAlignment) - t.bytes);
    if (progress) progress(i + 1, tensors.size());
  }
  out.commit();
}

void write_replica_file(const std::string& model_path, const std::string& out_path, ThreadPool& pool,
                        const ProgressFn& progress) {
  const GgufFile model = GgufFile::open(model_path);
  write_replica_file_for(model, model_layers(model), out_path, pool, progress);
}

std::string default_replica_path(const std::string& model_path) {
  std::string base = model_path;
  constexpr std::string_view kExtension = ".gguf";
  if (base.size() > kExtension.size() && base.ends_with(kExtension)) base.resize(base.size() - kExtension.size());
  return base + ".replicas.gguf";
}

bool is_replica_file(const GgufFile& file) {
  const GgufValue* arch = file.find(kKeyArchitecture);
  return arch && arch->type() == GgufType::STRING && arch->as_string() == kArchitecture;
}

std::string replica_file_problem(const GgufFile& replica, const ModelLayers& layers, const ModelFingerprint& model) {
  try {
    const std::string arch = replica.get_string_opt(kKeyArchitecture).value_or("");
    if (arch != kArchitecture) {
      return fmt::format("is not a morphserve replica file (its architecture is '{}')", arch.empty() ? "(none)" : arch);
    }
    const uint64_t version = replica.get_uint_opt(kKeyFormatVersion).value_or(0);
    if (version != kFormatVersion) {
      return fmt::format("has replica format {}, but this morphserve reads format {}", version, kFormatVersion);
    }
    const ModelFingerprint recorded{replica.get_uint_opt(kKeySourceSize).value_or(0),
                                    replica.get_uint_opt(kKeySourceHash).value_or(0)};
    if (recorded != model) return "was made from a different model file (or the model changed since)";
    const uint64_t n_layers = replica.get_uint_opt(kKeyLayerCount).value_or(0);
    if (n_layers != layers.stored.size()) {
      return fmt::format("has {} layers but the model has {}", n_layers, layers.stored.size());
    }
    for (const PlannedTensor& t : planned_tensors(layers)) {
      const GgufTensorInfo* info = replica.find_tensor(t.name);
      if (!info) return fmt::format("lacks tensor {}", t.name);
      const std::vector<int64_t> dims{t.source.cols, t.source.rows};
      if (info->type != t.type || info->dims != dims) {
        return fmt::format("has tensor {} as {} {}, expected {} {}", t.name, dtype_name(info->type),
                           show_dims(info->dims), dtype_name(t.type), show_dims(dims));
      }
    }
  } catch (const ModelFileError& e) {
    return fmt::format("is malformed ({})", e.what());
  }
  return "";
}

}  // namespace morphserve
