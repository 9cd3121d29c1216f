#include "cli/profile_command.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <span>
#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "cli/model_options.h"
#include "cli/progress_bar.h"
#include "core/error.h"
#include "morph/importance.h"
#include "morph/morph_order.h"

namespace morphserve::cli {

namespace {

struct ProfileOptions {
  ModelOptions model;
  std::string calib_path;
  std::string out_path;
  int64_t ctx = 128;
  int64_t max_tokens = 1024;
  int64_t skip_tokens = 0;
  int64_t batch = 512;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail<InvalidArgument>("cannot read calibration file {}", path);
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

void print_profile(const ImportanceProfile& p) {
  std::printf("%5s %8s %8s %8s %8s %5s\n", "layer", "LTS", "LRS", "MDS", "LIS", "rank");
  for (const LayerImportance& l : p.layers) {
    std::printf("%5d %8.5f %8.5f %8.5f %8.5f %5d\n", l.layer, l.lts, l.lrs, l.mds, l.lis, l.rank);
  }
  std::string order;
  for (int l : p.order) order += fmt::format("{}{}", order.empty() ? "" : " ", l);
  std::printf("order (swap first -> last): %s\n", order.c_str());
}

void run_profile(const ProfileOptions& o) {
  LoadedModel loaded = load_for_cli(o.model);
  const LlamaModel& model = *loaded.model;
  const std::vector<int32_t> all_tokens = model.tokenizer.encode(read_text(o.calib_path), true);
  if (o.skip_tokens >= static_cast<int64_t>(all_tokens.size())) {
    fail<InvalidArgument>("--skip-tokens {} skips all {} tokens of {}", o.skip_tokens, all_tokens.size(), o.calib_path);
  }
  // Skipping lets calibration use a different part of the text than `ppl` evaluates.
  const std::span<const int32_t> tokens = std::span(all_tokens).subspan(static_cast<size_t>(o.skip_tokens));
  std::fprintf(stderr, "%zu tokens in %s, calibrating on %zu after skipping %lld\n", all_tokens.size(),
               o.calib_path.c_str(), tokens.size(), static_cast<long long>(o.skip_tokens));

  ImportanceOptions options;
  options.ctx = o.ctx;
  options.max_tokens = o.max_tokens;
  options.batch = o.batch;
  options.bos = model.tokenizer.bos();
  options.kv_type = o.model.resolve_kv_type(model);
  int64_t usable = static_cast<int64_t>(tokens.size());
  if (o.max_tokens > 0) usable = std::min(usable, o.max_tokens);
  ProgressBar bar("profile", importance_pass_count(model.config.n_layers, usable / std::max<int64_t>(1, o.ctx)));
  const ImportanceProfile profile = profile_layer_importance(model, tokens, options, *loaded.pool,
                                                             [&](int64_t done, int64_t) { bar.update(done); });
  bar.finish();
  print_profile(profile);
  write_morph_order(o.out_path, profile, CalibrationInfo{o.model.model_source(), o.calib_path, o.skip_tokens});
  std::fprintf(stderr, "wrote %s (%lld calibration tokens in %lld windows of %lld)\n", o.out_path.c_str(),
               static_cast<long long>(profile.n_tokens), static_cast<long long>(profile.n_windows),
               static_cast<long long>(profile.ctx));
}

}  // namespace

void add_profile_command(CLI::App& app) {
  auto options = std::make_shared<ProfileOptions>();
  CLI::App* command = app.add_subcommand("profile", "Rank the decoder layers by importance (LIS) and write the swap order");
  options->model.add_to(*command);
  command->add_option("--calib", options->calib_path, "calibration text file")->required()->check(CLI::ExistingFile);
  command->add_option("-o,--out", options->out_path, "where to write the order (JSON)")->required();
  command->add_option("--ctx", options->ctx, "tokens per calibration window")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  command->add_option("--max-tokens", options->max_tokens, "calibrate on at most this many tokens (0: all)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  command->add_option("--skip-tokens", options->skip_tokens,
                      "skip this many tokens at the start of the text (keep calibration apart from evaluation)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  command->add_option("-b,--batch", options->batch, "tokens per forward pass")->capture_default_str()->check(CLI::PositiveNumber);
  command->callback([options] { run_profile(*options); });
}

}  // namespace morphserve::cli
