#include "cli/ppl_command.h"

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include <fmt/format.h>

#include "cli/model_options.h"
#include "cli/progress_bar.h"
#include "core/error.h"
#include "engine/kv_block_pool.h"
#include "engine/llama_runner.h"
#include "engine/perplexity.h"

namespace morphserve::cli {

namespace {

struct PplOptions {
  ModelOptions model;
  std::string text_path;
  int64_t n_ctx = 512;
  int64_t max_tokens = 0;
  int64_t batch = 512;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail<InvalidArgument>("cannot read text file {}", path);
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

void run_ppl(const PplOptions& o) {
  LoadedModel loaded = load_for_cli(o.model);
  const LlamaModel& model = *loaded.model;
  if (o.n_ctx > model.config.context_length) {
    fail<InvalidArgument>("--ctx {} exceeds the model's context of {}", o.n_ctx, model.config.context_length);
  }
  const std::vector<int32_t> tokens = model.tokenizer.encode(read_file(o.text_path), true);
  std::fprintf(stderr, "%zu tokens in %s\n", tokens.size(), o.text_path.c_str());

  KvLayout layout{model.config.n_layers, 16, model.config.kv_dim(), o.model.resolve_kv_type(model)};
  KvBlockPool kv(layout, (o.n_ctx + layout.block_size - 1) / layout.block_size, *loaded.backend);
  LlamaRunner runner(model, kv, *loaded.backend, std::min(o.batch, o.n_ctx));

  PerplexityOptions options{o.n_ctx, o.max_tokens};
  const int64_t usable = o.max_tokens > 0 ? std::min<int64_t>(o.max_tokens, static_cast<int64_t>(tokens.size()))
                                          : static_cast<int64_t>(tokens.size());
  ProgressBar bar("perplexity", usable / o.n_ctx);
  const PerplexityResult r = evaluate_perplexity(runner, kv, tokens, model.tokenizer.bos(), options,
                                                 [&](int64_t done, int64_t, double ppl) {
                                                   bar.update(done, fmt::format("ppl {:.4f}", ppl));
                                                 });
  bar.finish();
  std::printf("perplexity: %.4f +/- %.4f (%lld windows of %lld tokens, %lld scored)\n", r.perplexity,
              r.perplexity_error, static_cast<long long>(r.n_windows), static_cast<long long>(o.n_ctx),
              static_cast<long long>(r.n_scored));
}

}  // namespace

void add_ppl_command(CLI::App& app) {
  auto options = std::make_shared<PplOptions>();
  CLI::App* command = app.add_subcommand("ppl", "Perplexity of the model on a text file (llama.cpp's method)");
  options->model.add_to(*command);
  command->add_option("--text", options->text_path, "text file to score")->required()->check(CLI::ExistingFile);
  command->add_option("--ctx", options->n_ctx, "window size in tokens")->capture_default_str()->check(CLI::Range(4, 1 << 20));
  command->add_option("--max-tokens", options->max_tokens, "use at most this many tokens of the text (0: all)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  command->add_option("-b,--batch", options->batch, "tokens per forward pass")->capture_default_str()->check(CLI::PositiveNumber);
  command->callback([options] { run_ppl(*options); });
}

}  // namespace morphserve::cli
