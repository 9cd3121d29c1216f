#pragma once
// The replica store (DESIGN.md §4): for every decoder layer, its linear matrices at full precision
// (as the model file stores them) and as W8 (Q8_0) and W4 (Q4_0) replicas. All of it lives outside
// the memory budget: the full-precision views point into a read-only mapping of the model GGUF,
// the replicas into a mapping of the replica GGUF that `morphserve quantize` writes (or that
// `serve` writes and caches next to the model on first start). Dummy models have no file: their
// store holds owned copies, still outside the budget. Reading from the store is the swap's copy.
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "engine/layer_linears.h"
#include "model/llama_weights.h"
#include "morph/packed_layer.h"
#include "morph/replica_file.h"  // ProgressFn, and write_replica_file for the store's users

namespace morphserve {

class ReplicaStore {
 public:
  // Maps the model GGUF and the replica file at replica_path. When the replica file is missing or
  // does not match the model (fingerprint, layer count, shapes), it is (re)written first when
  // `create_if_missing`, otherwise ModelFileError says how to create it. A GGUF at replica_path
  // that is not a replica file at all (another model) is refused, never overwritten.
  static std::unique_ptr<ReplicaStore> open(const std::string& model_path, const std::string& replica_path,
                                            bool create_if_missing, ThreadPool& pool, const ProgressFn& progress = {});
  // A store over owned copies of the model's current layer weights (dummy models), quantized now.
  static std::unique_ptr<ReplicaStore> in_memory(const LlamaModel& model, ThreadPool& pool);

  virtual ~ReplicaStore() = default;

  int n_layers() const { return static_cast<int>(ladders_.size()); }
  // The precisions a layer can run at, full precision first, each strictly smaller in bytes
  // than the one before (a model stored in Q8_0 has the ladder Q8_0, Q4_0).
  const std::vector<DType>& ladder(int layer) const;
  DType full_precision(int layer) const { return ladder(layer).front(); }
  // The layer's seven matrices at `precision` (one of its ladder). Matrices whose width is not a
  // multiple of 32 keep their stored float type in every replica (as llama.cpp does).
  // Throws InvalidArgument for a layer or precision outside the store.
  const LayerLinears& replica(int layer, DType precision) const;
  // Where the store reads from, for the log and /morph ("path/model.replicas.gguf", "memory").
  const std::string& description() const { return description_; }

  // Why the bytes of `layer` at `precision` can no longer be trusted ("... was deleted", "... was
  // truncated on disk ..."), or "" while they can. Files can change under a running server; a
  // swap must not start from one that did.
  virtual std::string source_problem(int layer, DType precision) const;
  // The same for every file the store reads from.
  virtual std::string any_source_problem() const;
  // Whether the store reads files that can change under it (false: owned memory).
  virtual bool reads_files() const { return false; }
  // The swap's copy: the layer's matrices at `precision`, laid out by `packing`, written under
  // `base`. File stores read with pread, so a file truncated meanwhile is a ModelFileError, never
  // a SIGBUS. Called on the swapper's worker thread.
  virtual void copy_to(int layer, DType precision, const PackedLayer& packing, std::byte* base) const;

 protected:
  ReplicaStore() = default;
  std::vector<std::vector<DType>> ladders_;                 // per layer
  std::vector<std::vector<LayerLinears>> replicas_;         // per layer, one per ladder entry
  std::string description_;
};

}  // namespace morphserve
