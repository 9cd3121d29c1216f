#pragma once
// Flags every model-running subcommand shares (-m, --precision, --threads, --kv-type) and the
// objects they build.
#include <limits>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "backend/cpu_backend.h"
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

// Declared in the order they must be built (and destroyed in reverse): the model's weights give
// their bytes back to the ledger through the backend.
struct LoadedModel {
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<MemoryBudget> ledger;
  std::unique_ptr<CpuBackend> backend;
  std::unique_ptr<LlamaModel> model;
};

// Builds the thread pool, a ledger of `budget_bytes` (unlimited by default) and the CPU backend
// on them, and loads the model through it, logging what was loaded and in which formats. Throws
// OutOfBudget when the weights do not fit.
LoadedModel load_for_cli(const ModelOptions& options, size_t budget_bytes = std::numeric_limits<size_t>::max());

}  // namespace morphserve::cli
