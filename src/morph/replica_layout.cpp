#include "morph/replica_layout.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "model/llama_config.h"

namespace morphserve {
namespace {

// Rungs below full precision, largest first.
constexpr DType kQuantizedRungs[] = {DType::Q8_0, DType::Q4_0};

// Suffixes of the seven matrices in LayerLinears order (llama.cpp's tensor names).
constexpr const char* kMatrixNames[LayerLinears::kCount] = {"attn_q",   "attn_k", "attn_v",  "attn_output",
                                                            "ffn_gate", "ffn_up", "ffn_down"};

}  // namespace

DType replica_type(const MatrixView& stored, DType rung) {
  if (stored.cols % dtype_block_elements(rung) != 0) return stored.type;
  return dtype_row_bytes(rung, stored.cols) < stored.row_bytes() ? rung : stored.type;
}

size_t rung_bytes(const LayerLinears& stored, DType rung) {
  size_t total = 0;
  for (const MatrixView& m : stored.m) {
    total += dtype_row_bytes(replica_type(m, rung), m.cols) * static_cast<size_t>(m.rows);
  }
  return total;
}

std::vector<DType> layer_ladder(const LayerLinears& stored) {
  std::vector<DType> ladder{stored.precision()};
  size_t previous = stored.bytes();
  for (DType rung : kQuantizedRungs) {
    // A layer mostly stored in Q8_0 but with a float matrix would shrink "to Q8_0": it is already
    // on that rung, and one DType names one rung.
    if (std::find(ladder.begin(), ladder.end(), rung) != ladder.end()) continue;
    const size_t bytes = rung_bytes(stored, rung);
    if (bytes < previous) {
      ladder.push_back(rung);
      previous = bytes;
    }
  }
  return ladder;
}

std::array<std::string, LayerLinears::kCount> layer_tensor_names(int layer) {
  std::array<std::string, LayerLinears::kCount> names;
  for (size_t i = 0; i < LayerLinears::kCount; ++i) names[i] = fmt::format("blk.{}.{}.weight", layer, kMatrixNames[i]);
  return names;
}

std::string replica_tensor_name(DType rung, const std::string& model_tensor) {
  return fmt::format("{}/{}", dtype_name(rung), model_tensor);
}

ModelLayers model_layers(const GgufFile& model) {
  const LlamaConfig config = llama_config_from_gguf(model);
  const int64_t d = config.n_embd;
  // (rows, cols) in LayerLinears order, as load_llama_gguf expects them.
  const std::array<std::pair<int64_t, int64_t>, LayerLinears::kCount> shapes = {{
      {config.q_dim(), d}, {config.kv_dim(), d}, {config.kv_dim(), d}, {d, config.q_dim()},
      {config.n_ff, d}, {config.n_ff, d}, {d, config.n_ff}}};
  ModelLayers layers;
  for (int l = 0; l < config.n_layers; ++l) {
    auto names = layer_tensor_names(l);
    LayerLinears views;
    for (size_t i = 0; i < LayerLinears::kCount; ++i) {
      const auto [rows, cols] = shapes[i];
      const GgufTensorInfo* info = model.find_tensor(names[i]);
      if (!info) fail<ModelFileError>("{} is missing tensor {}", model.path(), names[i]);
      if (info->dims != std::vector<int64_t>{cols, rows}) {
        fail<ModelFileError>("{}: tensor {} has shape [{}] but this model's configuration needs [{}, {}]", model.path(),
                             names[i], fmt::join(info->dims, ", "), cols, rows);
      }
      views.m[i] = {info->type, info->data, rows, cols};
    }
    layers.ladders.push_back(layer_ladder(views));
    layers.stored.push_back(views);
    layers.names.push_back(std::move(names));
  }
  return layers;
}

}  // namespace morphserve
