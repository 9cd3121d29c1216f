#include "cli/morph_options.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "cli/progress_bar.h"
#include "core/error.h"
#include "core/units.h"
#include "model/hf_checkpoint.h"
#include "morph/morph_order.h"

namespace morphserve::cli {

namespace {

// Where serve keeps a model's replica file by default: beside the model (MODEL.replicas.gguf), as
// `quantize` writes it, unless that folder is read-only, in which case the user's cache folder
// (XDG_CACHE_HOME or ~/.cache, under morphserve/). The permission bits are read as well as
// access(): a folder marked read-only is meant to stay untouched even when we run as root.
std::string replica_path_for(const std::string& model_path) {
  namespace fs = std::filesystem;
  const std::string beside = default_replica_path(model_path);
  std::error_code ec;
  if (fs::exists(beside, ec)) return beside;
  const fs::path folder = fs::absolute(model_path, ec).parent_path();
  const auto perms = fs::status(folder, ec).permissions();
  const bool marked_writable = !ec && (perms & (fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write)) != fs::perms::none;
  if (marked_writable && ::access(folder.c_str(), W_OK) == 0) return beside;
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  const fs::path cache = xdg && *xdg ? fs::path(xdg) / "morphserve" : fs::path(home ? home : "/tmp") / ".cache" / "morphserve";
  fs::create_directories(cache, ec);
  if (ec) fail<InvalidArgument>("{} is read-only and the cache folder {} cannot be created ({}); pass --replicas FILE",
                                folder.string(), cache.string(), ec.message());
  const std::string cached = (cache / fs::path(beside).filename()).string();
  spdlog::info("{} is read-only: replicas are kept in {}", folder.string(), cached);
  return cached;
}

}  // namespace

void MorphOptions::add_to(CLI::App& command) {
  command.add_option("--morph", morph,
                     "dynamic: swap layers to W8/W4 replicas under load and back; off: full precision only; "
                     "static-w8 / static-w4: every layer quantized from the start")
      ->check(CLI::IsMember({"dynamic", "off", "static-w8", "static-w4"}))
      ->capture_default_str();
  command.add_option("--mode", mode, "controller preset: default, performance (swap early), accuracy (swap late, W8 first)")
      ->check(CLI::IsMember({"default", "performance", "accuracy"}))
      ->capture_default_str();
  command.add_option("--morph-order", order_path,
                     "layer order from `morphserve profile` (default: front to back)");
  command.add_option("--slo-ttft", slo_ttft,
                     "time-to-first-token target, e.g. 2s; first tokens slower than 80% of it count as pressure "
                     "(0: not a signal)")
      ->capture_default_str();
  command.add_option("--morph-hold", hold, "calm time before the first restore (default: the preset's)");
  command.add_option("--morph-log", log_path, "append one JSON line per morphing action to this file");
  command.add_option("--replicas", replicas_path,
                     "replica GGUF of the model (default: MODEL.replicas.gguf beside it, or in ~/.cache/morphserve "
                     "when that folder is read-only; written at first start)");
}

void MorphOptions::validate(const std::string& precision) const {
  if (!precision.empty() && morph != "off") {
    fail<InvalidArgument>("--precision fixes layer formats and cannot be combined with --morph {} (use --morph off)", morph);
  }
  // Allowed but said out loud: an experiment passes the same flags to every arm.
  if (!dynamic() && (!order_path.empty() || !log_path.empty() || !hold.empty() || !replicas_path.empty())) {
    spdlog::warn("--morph {}: --morph-order, --morph-log, --morph-hold and --replicas have no effect", morph);
  }
  if (parse_duration(slo_ttft) < 0) fail<InvalidArgument>("--slo-ttft must not be negative");
  if (!hold.empty() && parse_duration(hold) < 0) fail<InvalidArgument>("--morph-hold must not be negative");
}

std::string MorphOptions::load_precision(const std::string& precision) const {
  if (morph == "static-w8") return "all:w8";
  if (morph == "static-w4") return "all:w4";
  return precision;
}

MorphPlan plan_morph(const MorphOptions& o, const std::string& model_source, const LlamaModel& model,
                     ThreadPool& pool) {
  MorphPlan plan;
  const MorphMode mode = *parse_morph_mode(o.mode);
  plan.config.mode = mode;
  plan.config.controller = ControllerConfig::preset(mode);
  plan.config.controller.slo_ttft_seconds = parse_duration(o.slo_ttft);
  if (!o.hold.empty()) plan.config.controller.hold_seconds = parse_duration(o.hold);
  plan.config.controller.validate();
  plan.config.log_path = o.log_path;
  if (!o.order_path.empty()) {
    plan.config.order = load_morph_order(o.order_path, model.config.n_layers);
    plan.config.order_source = o.order_path;
  }
  // Dummies and Hugging Face checkpoints have no GGUF file to read swaps from: their replicas are
  // built in memory from the loaded weights.
  if (model_source.starts_with("dummy:") || is_hf_checkpoint(model_source)) {
    plan.store = ReplicaStore::in_memory(model, pool);
  } else {
    const std::string path = o.replicas_path.empty() ? replica_path_for(model_source) : o.replicas_path;
    std::unique_ptr<ProgressBar> bar;
    plan.store = ReplicaStore::open(model_source, path, /*create_if_missing=*/true, pool, [&](size_t done, size_t total) {
      if (!bar) bar = std::make_unique<ProgressBar>("quantizing replicas", static_cast<int64_t>(total));
      bar->update(static_cast<int64_t>(done));
    });
    if (bar) bar->finish();
  }
  plan.resident_bytes = MorphManager::resident_bytes_for(*plan.store, plan.config.controller);
  return plan;
}

}  // namespace morphserve::cli
