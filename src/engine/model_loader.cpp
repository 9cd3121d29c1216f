#include "engine/model_loader.h"

#include <spdlog/spdlog.h>

#include "backend/cpu_backend.h"
#include "core/error.h"
#include "model/dummy_model.h"
#include "model/hf_checkpoint.h"
#include "quant/quantize.h"

namespace morphserve {

int convert_layer(LayerWeights& layer, DType target, ThreadPool& pool, Backend& backend) {
  int kept = 0;
  for (WeightMatrix* m : layer.linears()) {
    if (m->type == target) continue;
    if (m->cols % dtype_block_elements(target) != 0) {
      ++kept;
      continue;
    }
    const MatrixView source = m->view();
    *m = WeightMatrix(backend, target, m->rows, m->cols,
                      [&](std::byte* host) { convert_matrix_into(source, target, host, &pool); });
  }
  return kept;
}

void apply_precision_map(LlamaModel& model, const PrecisionMap& map, ThreadPool& pool, Backend& backend) {
  int kept = 0;
  for (size_t l = 0; l < map.size() && l < model.weights.layers.size(); ++l) {
    if (map[l]) kept += convert_layer(model.weights.layers[l], *map[l], pool, backend);
  }
  if (kept > 0) {
    spdlog::info("{} matrices whose width is not a multiple of their target's block (32, or 256 for K-quants) stay "
                 "in their stored type",
                 kept);
  }
}

namespace {

LlamaModel load_dummy(const std::string& source, std::string_view spec, ThreadPool& pool, Backend& backend) {
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
  if (!dtype_is_quantized(format)) return make_dummy_model(shape, format, backend);
  // Quantized dummies are made the way a user would make them: quantize an f16 model. The f16
  // model is scratch host memory, like a file being read, so only the quantized result counts
  // against the budget.
  UnmeteredCpuBackend scratch(pool);
  LlamaModel model = make_dummy_model(shape, DType::F16, scratch);
  auto move_to_backend = [&](WeightMatrix& m, DType target) {
    if (m.empty()) return;
    if (m.cols % dtype_block_elements(target) != 0) target = m.type;
    const MatrixView source = m.view();
    m = WeightMatrix(backend, target, m.rows, m.cols,
                     [&](std::byte* host) { convert_matrix_into(source, target, host, &pool); });
  };
  move_to_backend(model.weights.token_embd, model.weights.token_embd.type);
  move_to_backend(model.weights.output, model.weights.output.type);
  for (LayerWeights& layer : model.weights.layers) {
    for (WeightMatrix* m : layer.linears()) move_to_backend(*m, format);
  }
  model.source = source;
  return model;
}

}  // namespace

LlamaModel load_model(const std::string& source, std::string_view precision_spec, ThreadPool& pool, Backend& backend) {
  constexpr std::string_view kDummyPrefix = "dummy:";
  LlamaModel model = source.starts_with(kDummyPrefix)
                         ? load_dummy(source, std::string_view(source).substr(kDummyPrefix.size()), pool, backend)
                         : is_hf_checkpoint(source) ? load_hf_checkpoint(source, backend)
                                                    : load_llama_gguf(source, backend);
  apply_precision_map(model, parse_precision_map(precision_spec, model.config.n_layers), pool, backend);
  return model;
}

}  // namespace morphserve
