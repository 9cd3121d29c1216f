#include "engine/model_loader.h"

#include <spdlog/spdlog.h>

#include "core/error.h"
#include "model/dummy_model.h"
#include "quant/quantize.h"

namespace morphserve {

int convert_layer(LayerWeights& layer, DType target, ThreadPool& pool) {
  int kept = 0;
  for (WeightMatrix* m : layer.linears()) {
    if (m->type == target) continue;
    if (dtype_is_quantized(target) && m->cols % kQuantBlock != 0) {
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
    spdlog::info("{} matrices whose width is not a multiple of {} stay in their stored type", kept, kQuantBlock);
  }
}

LlamaModel load_model(const std::string& source, std::string_view precision_spec, ThreadPool& pool) {
  LlamaModel model;
  constexpr std::string_view kDummyPrefix = "dummy:";
  if (source.starts_with(kDummyPrefix)) {
    std::string_view rest = std::string_view(source).substr(kDummyPrefix.size());
    const size_t colon = rest.find(':');
    const std::string_view shape = rest.substr(0, colon);
    DType format = DType::F16;
    if (colon != std::string_view::npos) {
      const auto parsed = parse_dtype(rest.substr(colon + 1));
      if (!parsed) {
        fail<InvalidArgument>("'{}': unknown format '{}' (use f32, f16, bf16, w8 or w4)", source, rest.substr(colon + 1));
      }
      format = *parsed;
    }
    model = make_dummy_model(shape, dtype_is_quantized(format) ? DType::F16 : format);
    if (dtype_is_quantized(format)) {
      for (LayerWeights& layer : model.weights.layers) convert_layer(layer, format, pool);
      model.source = source;
    }
  } else {
    model = load_llama_gguf(source);
  }
  apply_precision_map(model, parse_precision_map(precision_spec, model.config.n_layers), pool);
  return model;
}

}  // namespace morphserve
