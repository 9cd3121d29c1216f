#include "cli/quantize_command.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "cli/progress_bar.h"
#include "core/error.h"
#include "kernels/thread_pool.h"
#include "model/hf_checkpoint.h"
#include "morph/replica_store.h"

namespace morphserve::cli {

namespace {

struct QuantizeOptions {
  std::string model;
  std::string out;  // empty: default_replica_path(model)
  int threads = 0;
};

void run_quantize(const QuantizeOptions& o) {
  if (o.model.starts_with("dummy:")) {
    fail<InvalidArgument>("{} is a dummy model and has no file to quantize: replicas of dummy models are built in "
                          "memory when serve starts",
                          o.model);
  }
  if (is_hf_checkpoint(o.model)) {
    fail<InvalidArgument>("{} is a Hugging Face checkpoint: serve builds its replicas in memory (or export it to GGUF "
                          "with 'morphserve export' and quantize that)",
                          o.model);
  }
  const std::string out = o.out.empty() ? default_replica_path(o.model) : o.out;
  ThreadPool pool(o.threads);
  const auto start = std::chrono::steady_clock::now();
  // The bar's total (matrices to quantize) is known only once the model is read.
  std::optional<ProgressBar> bar;
  write_replica_file(o.model, out, pool, [&](size_t done, size_t total) {
    if (!bar) bar.emplace("quantize", static_cast<int64_t>(total));
    bar->update(static_cast<int64_t>(done), "matrices");
  });
  if (bar) bar->finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // Opening it is the same check serve makes, so a file that prints here is one serve accepts.
  const auto store = ReplicaStore::open(o.model, out, false, pool);
  std::string ladder;
  for (DType type : store->ladder(0)) ladder += (ladder.empty() ? "" : " ") + std::string(dtype_name(type));
  const auto bytes = std::filesystem::file_size(out);
  std::printf("wrote %s: %.1f MiB in %.2f s (%d layers, precisions %s)\n", out.c_str(),
              static_cast<double>(bytes) / (1 << 20), seconds, store->n_layers(), ladder.c_str());
}

}  // namespace

void add_quantize_command(CLI::App& app) {
  auto options = std::make_shared<QuantizeOptions>();
  CLI::App* command = app.add_subcommand(
      "quantize", "Write the W8/W4 replicas of a GGUF model's layers to a replica file (serve maps it)");
  command->add_option("-m,--model", options->model, "GGUF model file")->required();
  command->add_option("-o,--output", options->out, "replica file to write (default: MODEL.replicas.gguf beside the model)");
  command->add_option("-t,--threads", options->threads, "worker threads (default: one per core)")
      ->check(CLI::NonNegativeNumber);
  command->callback([options] { run_quantize(*options); });
}

}  // namespace morphserve::cli
