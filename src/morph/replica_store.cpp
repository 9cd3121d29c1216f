#include "morph/replica_store.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "core/error.h"
#include "model/gguf_file.h"
#include "model/llama_config.h"
#include "morph/replica_file.h"
#include "morph/replica_layout.h"
#include "morph/source_file.h"
#include "quant/quantize.h"

namespace morphserve {

namespace {

// Full precision comes from the model GGUF, the rungs from the replica GGUF. Both stay mapped for
// the store's lifetime (the views point into them, for tools that multiply with a replica
// directly), but a swap copies through SourceFile reads, checked against the files as opened.
class FileReplicaStore : public ReplicaStore {
 public:
  explicit FileReplicaStore(GgufFile model) : model_(std::move(model)) {}

  const GgufFile& model() const { return model_; }
  void attach(GgufFile replica, const ModelLayers& layers, const std::string& path) {
    replica_.emplace(std::move(replica));
    // Opened after both were parsed and checked: the identity recorded is that of the files
    // whose contents were validated (a change in between is too narrow a race to matter).
    model_source_ = std::make_unique<SourceFile>(model_.path());
    replica_source_ = std::make_unique<SourceFile>(path);
    description_ = path;
    ladders_ = layers.ladders;
    replicas_.resize(layers.stored.size());
    locations_.resize(layers.stored.size());
    for (size_t l = 0; l < layers.stored.size(); ++l) {
      replicas_[l].push_back(layers.stored[l]);
      std::array<Location, LayerLinears::kCount> full;
      for (size_t i = 0; i < LayerLinears::kCount; ++i) {
        full[i] = {model_source_.get(), tensor_offset(model_, layers.names[l][i])};
      }
      locations_[l].push_back(full);
      for (size_t r = 1; r < ladders_[l].size(); ++r) {
        LayerLinears views = layers.stored[l];
        auto where = full;
        for (size_t i = 0; i < LayerLinears::kCount; ++i) {
          MatrixView& v = views.m[i];
          const DType type = replica_type(v, ladders_[l][r]);
          if (type == v.type) continue;
          // replica_file_problem checked that every tensor exists with this type and shape.
          const std::string name = replica_tensor_name(ladders_[l][r], layers.names[l][i]);
          v.type = type;
          v.data = replica_->find_tensor(name)->data;
          where[i] = {replica_source_.get(), tensor_offset(*replica_, name)};
        }
        replicas_[l].push_back(views);
        locations_[l].push_back(where);
      }
    }
  }

  std::string source_problem(int layer, DType precision) const override {
    for (const Location& at : locations(layer, precision)) {
      if (std::string why = at.file->problem(); !why.empty()) return why;
    }
    return {};
  }

  bool reads_files() const override { return true; }

  std::string any_source_problem() const override {
    if (std::string why = model_source_->problem(); !why.empty()) return why;
    return replica_source_->problem();
  }

  void copy_to(int layer, DType precision, const PackedLayer& packing, std::byte* base) const override {
    const LayerLinears& views = replica(layer, precision);
    const auto& where = locations(layer, precision);
    for (size_t i = 0; i < LayerLinears::kCount; ++i) {
      where[i].file->read(where[i].offset, base + packing.offsets[i], views.m[i].bytes());
    }
  }

 private:
  struct Location {
    const SourceFile* file = nullptr;
    uint64_t offset = 0;  // of the matrix's data in the file
  };

  static uint64_t tensor_offset(const GgufFile& file, const std::string& name) {
    const GgufTensorInfo* info = file.find_tensor(name);
    if (!info) fail<ModelFileError>("{} is missing tensor {}", file.path(), name);
    return file.data_offset() + info->offset;
  }

  const std::array<Location, LayerLinears::kCount>& locations(int layer, DType precision) const {
    const std::vector<DType>& rungs = ladder(layer);
    const size_t r = static_cast<size_t>(std::find(rungs.begin(), rungs.end(), precision) - rungs.begin());
    if (r == rungs.size()) (void)replica(layer, precision);  // throws the "no such replica" error
    return locations_[static_cast<size_t>(layer)][r];
  }

  GgufFile model_;
  std::optional<GgufFile> replica_;
  std::unique_ptr<SourceFile> model_source_;
  std::unique_ptr<SourceFile> replica_source_;
  std::vector<std::vector<std::array<Location, LayerLinears::kCount>>> locations_;  // per layer, per rung
};

// Owned copies for models with no file (dummy models), so the engine may free its own weights.
class MemoryReplicaStore : public ReplicaStore {
 public:
  MemoryReplicaStore(const LlamaModel& model, ThreadPool& pool) {
    description_ = "memory";
    for (const LayerWeights& layer : model.weights.layers) {
      LayerLinears full;
      for (size_t i = 0; i < LayerLinears::kCount; ++i) {
        const WeightMatrix& m = *layer.linears()[i];
        AlignedBuffer copy(m.bytes());
        if (m.bytes() > 0) std::memcpy(copy.data(), m.data.data(), m.bytes());
        full.m[i] = {m.type, copy.data(), m.rows, m.cols};
        buffers_.push_back(std::move(copy));
      }
      ladders_.push_back(layer_ladder(full));
      replicas_.emplace_back().push_back(full);
      for (size_t r = 1; r < ladders_.back().size(); ++r) {
        LayerLinears views = full;
        for (MatrixView& v : views.m) {
          const DType type = replica_type(v, ladders_.back()[r]);
          if (type == v.type) continue;
          AlignedBuffer converted = convert_matrix(v, type, &pool);
          v = {type, converted.data(), v.rows, v.cols};
          buffers_.push_back(std::move(converted));
        }
        replicas_.back().push_back(views);
      }
    }
  }

 private:
  std::vector<AlignedBuffer> buffers_;  // moving an AlignedBuffer keeps its bytes where they are
};

// Why the file at a replica path cannot be used, and whether writing a new one there is safe.
struct ReplicaCheck {
  std::string problem;  // empty: `replica` holds the matching file
  bool replaceable = true;
};

// Opens the replica file at `path` if it matches the model; otherwise says why not. A file that is
// a sound GGUF but not a replica file (another model, most likely a mistyped path) must never be
// replaced without being asked; a missing, damaged or stale replica file may.
ReplicaCheck try_open_replica(const std::string& path, const ModelLayers& layers, const ModelFingerprint& fingerprint,
                              std::optional<GgufFile>& replica) {
  replica.reset();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return {"does not exist"};
  try {
    GgufFile file = GgufFile::open(path);
    ReplicaCheck check{replica_file_problem(file, layers, fingerprint)};
    check.replaceable = is_replica_file(file);
    if (check.problem.empty()) replica.emplace(std::move(file));
    return check;
  } catch (const ModelFileError& e) {
    return {fmt::format("cannot be used ({})", e.what())};
  }
}

}  // namespace

std::unique_ptr<ReplicaStore> ReplicaStore::open(const std::string& model_path, const std::string& replica_path,
                                                 bool create_if_missing, ThreadPool& pool, const ProgressFn& progress) {
  auto store = std::make_unique<FileReplicaStore>(GgufFile::open(model_path));
  const ModelLayers layers = model_layers(store->model());
  const ModelFingerprint fingerprint = model_fingerprint(store->model());
  std::optional<GgufFile> replica;
  ReplicaCheck check = try_open_replica(replica_path, layers, fingerprint, replica);
  if (!check.problem.empty()) {
    if (!check.replaceable) {
      fail<ModelFileError>("replica file {} {}; it is left untouched: choose another replica file path (write one "
                           "with `morphserve quantize -m {} -o FILE`)",
                           replica_path, check.problem, model_path);
    }
    if (!create_if_missing) {
      fail<ModelFileError>("replica file {} {}; create it with `morphserve quantize -m {} -o {}`", replica_path,
                           check.problem, model_path, replica_path);
    }
    spdlog::info("replica file {} {}: writing it now", replica_path, check.problem);
    write_replica_file_for(store->model(), layers, replica_path, pool, progress);
    check = try_open_replica(replica_path, layers, fingerprint, replica);
    // Only a model file replaced while we wrote, or another writer racing us, gets here.
    if (!check.problem.empty()) {
      fail<ModelFileError>("replica file {} was just written but {}", replica_path, check.problem);
    }
  }
  store->attach(std::move(*replica), layers, replica_path);
  return store;
}

std::unique_ptr<ReplicaStore> ReplicaStore::in_memory(const LlamaModel& model, ThreadPool& pool) {
  return std::make_unique<MemoryReplicaStore>(model, pool);
}

const std::vector<DType>& ReplicaStore::ladder(int layer) const {
  if (layer < 0 || layer >= n_layers()) {
    fail<InvalidArgument>("layer {} is outside the replica store ({} layers)", layer, n_layers());
  }
  return ladders_[static_cast<size_t>(layer)];
}

std::string ReplicaStore::source_problem(int, DType) const { return {}; }
std::string ReplicaStore::any_source_problem() const { return {}; }

void ReplicaStore::copy_to(int layer, DType precision, const PackedLayer& packing, std::byte* base) const {
  packing.copy(replica(layer, precision), base);
}

const LayerLinears& ReplicaStore::replica(int layer, DType precision) const {
  const std::vector<DType>& rungs = ladder(layer);
  for (size_t r = 0; r < rungs.size(); ++r) {
    if (rungs[r] == precision) return replicas_[static_cast<size_t>(layer)][r];
  }
  std::vector<std::string_view> names;
  for (DType rung : rungs) names.push_back(dtype_name(rung));
  fail<InvalidArgument>("layer {} has no {} replica (its precisions: {})", layer, dtype_name(precision),
                        fmt::join(names, ", "));
}

}  // namespace morphserve
