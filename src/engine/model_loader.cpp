#include "engine/model_loader.h"

#include <spdlog/spdlog.h>

#include "core/error.h"
#include "model/dummy_model.h"
#include "model/hf_checkpoint.h"
#include "quant/quantize.h"

namespace morphserve {

int convert_layer(LayerWeights& layer, DType target, ThreadPool& pool) {
  int kept = 0;
  for (WeightMatrix* m : layer.linears()) {
    if (m->type == target) continue;
    if (m->cols % dtype_block_elements(target) != 0) {
      ++kept;
      continue;
    }
    WeightMatrix converted;
    converted.type = target;
    converted.rows = m->rows;
    converted.cols = m->cols;
    converted.data = convert_matrix(m->view(), target, &pool);
    *m = std::move(converted);
  }
  return kept;
}

void apply_precision_map(LlamaModel& model, const PrecisionMap& map, ThreadPool& pool) {
  int kept = 0;
  for (size_t l = 0; l < map.size() && l < model.weights.layers.size(); ++l) {
    if (map[l]) kept += convert_layer(model.weights.layers[l], *map[l], pool);
  }
  if (kept > 0) {
    spdlog::info("{} matrices whose width is not a multiple of their target's block (32, or 256 for K-quants) stay "
                 "in their stored type",
                 kept);
  }
}

namespace {

LlamaModel load_dummy(const std::string& source, std::string_view spec, ThreadPool& pool) {
  const size_t colon = spec.find(':');
  const std::string_view shape = spec.substr(0, colon);
  DType format = DType::F16;
  if (colon != std::string_view::npos) {
    const auto parsed = parse_dtype(spec.substr(colon + 1));
    if (!parsed) {
      fail<InvalidArgument>("'{}': unknown format '{}' (use f32, f16, bf16, w8, w4, q4_K, q5_K or q6_K)", source, spec.substr(colon + 1));
    }
    format = *parsed;
  }
  if (!dtype_is_quantized(format)) return make_dummy_model(shape, format);
  // Quantized dummies are made the way a user would make them: quantize an f16 model.
  LlamaModel model = make_dummy_model(shape, DType::F16);
  for (LayerWeights& layer : model.weights.layers) convert_layer(layer, format, pool);
  model.source = source;
  return model;
}

}  // namespace

LlamaModel load_model(const std::string& source, std::string_view precision_spec, ThreadPool& pool) {
  constexpr std::string_view kDummyPrefix = "dummy:";
  LlamaModel model = source.starts_with(kDummyPrefix)
                         ? load_dummy(source, std::string_view(source).substr(kDummyPrefix.size()), pool)
                         : is_hf_checkpoint(source) ? load_hf_checkpoint(source)
                                                    : load_llama_gguf(source);
  apply_precision_map(model, parse_precision_map(precision_spec, model.config.n_layers), pool);
  return model;
}

}  // namespace morphserve
