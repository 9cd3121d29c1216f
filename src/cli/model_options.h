#pragma once
// Flags every model-running subcommand shares (-m, --precision, --threads, --kv-type) and the
// objects they build.
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "core/dtype.h"
#include "engine/kv_block_pool.h"
#include "kernels/thread_pool.h"
#include "model/llama_weights.h"

namespace morphserve::cli {

struct ModelOptions {
  std::string model;  // empty: the built-in default
  std::string precision;
  int threads = 0;
  std::string kv_type = "auto";

  void add_to(CLI::App& command);
  std::string model_source() const;
  // f32 for models stored in f32 (their users asked for exact arithmetic), f16 otherwise.
  DType resolve_kv_type(const LlamaModel& model) const;
};

struct LoadedModel {
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<LlamaModel> model;
};

// Builds the thread pool and loads the model, logging what was loaded and in which formats.
LoadedModel load_for_cli(const ModelOptions& options);

}  // namespace morphserve::cli
