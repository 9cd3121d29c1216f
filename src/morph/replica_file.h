#pragma once
// Internals shared by the replica store and the replica file writer (not for other folders): which
// precisions a layer's ladder holds, which type each matrix takes on each rung, where a model's
// layer matrices lie in its GGUF mapping, and whether a replica file still matches its model.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "engine/layer_linears.h"
#include "model/gguf_file.h"
#include "morph/replica_store.h"

namespace morphserve {

// The type a matrix takes on `rung`: the rung's type when that makes it smaller, else its stored
// type (a width that is not a multiple of 32 cannot be Q8_0/Q4_0, and a rung never upcasts a matrix
// that is already stored smaller). A matrix that keeps its stored type is never duplicated.
DType replica_type(const MatrixView& stored, DType rung);
// Bytes of the layer's seven matrices on `rung`.
size_t rung_bytes(const LayerLinears& stored, DType rung);
// The layer's ladder: its dominant stored type, then Q8_0 and Q4_0 where each is strictly smaller
// in bytes than the rung before it.
std::vector<DType> layer_ladder(const LayerLinears& stored);

// GGUF names of the seven matrices of layer `layer`, in LayerLinears order.
std::array<std::string, LayerLinears::kCount> layer_tensor_names(int layer);
// The replica file's name for a model tensor on a quantized rung: "q8_0/blk.3.attn_q.weight".
std::string replica_tensor_name(DType rung, const std::string& model_tensor);

// A model file's layers as the store needs them: views into the model's mapping, checked against
// the configuration (so a replica is never built for a tensor the engine would refuse).
struct ModelLayers {
  std::vector<LayerLinears> stored;                                   // per layer, into the mapping
  std::vector<std::array<std::string, LayerLinears::kCount>> names;   // per layer
  std::vector<std::vector<DType>> ladders;                            // per layer
};
// Throws ModelFileError naming the file for a non-Llama model or a missing / mis-shaped matrix.
ModelLayers model_layers(const GgufFile& model);

// Identifies the exact model file a replica file was made from. The header hash covers the header,
// metadata and tensor infos (everything before the data section), so any change of shape, type or
// metadata shows; the first bytes of every tensor's data are hashed too, so that two exports of the
// same architecture with different weights (a fine-tune) differ as well. Reads a few pages, never
// the whole file.
struct ModelFingerprint {
  uint64_t file_size = 0;
  uint64_t hash = 0;
  bool operator==(const ModelFingerprint&) const = default;
};
ModelFingerprint model_fingerprint(const GgufFile& model);
// 64-bit FNV-1a, continuing from `hash`.
uint64_t fnv1a64(const void* data, size_t size, uint64_t hash = 0xcbf29ce484222325ull);

// Writes the replica file for an already opened model (write_replica_file opens it first).
void write_replica_file_for(const GgufFile& model, const ModelLayers& layers, const std::string& out_path,
                            ThreadPool& pool, const ProgressFn& progress);
// Why `replica` cannot serve `model` (one clause: "was made from a different model file"), or ""
// when it matches: its kind, format version, fingerprint, layer count, and every expected tensor
// with its type and shape.
// Does this GGUF say it is a replica file (of any model, any format version)?
bool is_replica_file(const GgufFile& file);
std::string replica_file_problem(const GgufFile& replica, const ModelLayers& layers, const ModelFingerprint& model);

}  // namespace morphserve
