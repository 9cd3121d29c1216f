#include "cli/model_options.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "core/error.h"
#include "core/units.h"
#include "engine/model_loader.h"
#include "kernels/cpu_features.h"
#include "model/dummy_model.h"

namespace morphserve::cli {

void ModelOptions::add_to(CLI::App& command) {
  command.add_option("-m,--model", model,
                     fmt::format("GGUF model file, Hugging Face checkpoint folder (config.json, *.safetensors, tokenizer.json), or dummy:SHAPE[:FORMAT] (shapes {}; formats f32, f16, bf16, w8, w4, q4_K, q5_K, q6_K); "
                                 "default: the built-in dummy:tiny",
                                 fmt::join(dummy_shape_names(), ", ")));
  command.add_option("--precision", precision,
                     "per-layer weight formats, e.g. all:w4 or 0-3:w4,4:w8 (formats f32, f16, bf16, w8, w4, q4_K, q5_K, q6_K); "
                     "default: as stored");
  command.add_option("-t,--threads", threads, "worker threads (default: one per core)")->check(CLI::NonNegativeNumber);
  command.add_option("--kv-type", kv_type, "KV cache element type: auto (f32 for f32 models, else f16), f16 or f32")
      ->check(CLI::IsMember({"auto", "f16", "f32"}));
}

std::string ModelOptions::model_source() const { return model.empty() ? std::string(kDefaultModel) : model; }

DType ModelOptions::resolve_kv_type(const LlamaModel& loaded) const {
  if (kv_type == "f32") return DType::F32;
  if (kv_type == "f16") return DType::F16;
  return loaded.weights.token_embd.type == DType::F32 ? DType::F32 : DType::F16;
}

LoadedModel load_for_cli(const ModelOptions& options, size_t budget_bytes) {
  LoadedModel loaded;
  loaded.pool = std::make_unique<ThreadPool>(options.threads);
  loaded.ledger = std::make_unique<MemoryBudget>(budget_bytes);
  loaded.backend = std::make_unique<CpuBackend>(*loaded.ledger, *loaded.pool);
  const std::string source = options.model_source();
  try {
    loaded.model = std::make_unique<LlamaModel>(load_model(source, options.precision, *loaded.pool, *loaded.backend));
  } catch (const OutOfBudget& e) {
    fail<OutOfBudget>("memory budget {} is too small for the weights of {}, loading stopped there ({})",
                      format_size(budget_bytes), source, e.what());
  }
  const LlamaModel& m = *loaded.model;
  std::string formats;
  for (size_t l = 0; l < m.weights.layers.size(); ++l) {
    if (!formats.empty()) formats += ' ';
    formats += dtype_name(m.weights.layers[l].dominant_type());
  }
  spdlog::info("model {}: {} layers, width {}, {} heads ({} kv), vocab {}, {:.1f} MiB resident; layers: {}", source,
               m.config.n_layers, m.config.n_embd, m.config.n_heads, m.config.n_kv_heads, m.config.vocab_size,
               static_cast<double>(m.weights.bytes()) / (1 << 20), formats);
  spdlog::info("kernels: {}, {} threads", isa_name(active_isa()), loaded.pool->size());
  return loaded;
}

}  // namespace morphserve::cli
