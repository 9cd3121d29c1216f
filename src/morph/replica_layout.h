#pragma once
// The layout of a model's replicas, shared by the replica store and the replica file (not for
// other folders): which precisions a layer's ladder holds, which type each matrix takes on each
// rung, the GGUF names of a layer's matrices and of their replicas, and where a model's layer
// matrices lie in its GGUF mapping.
#include <array>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "engine/layer_linears.h"
#include "model/gguf_file.h"

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

}  // namespace morphserve
