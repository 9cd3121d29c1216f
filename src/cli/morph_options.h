#pragma once
// The morphing flags of `serve` (--morph, --mode, --morph-order, --slo-ttft, --morph-hold,
// --morph-log, --replicas) and what they build: nothing (off), a model quantized at load
// (static-w8/w4, the baselines), or the dynamic morph manager with its replica store.
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "core/memory_budget.h"
#include "morph/morph_manager.h"
#include "morph/morph_status.h"

namespace morphserve::cli {

struct MorphOptions {
  std::string morph = "dynamic";
  std::string mode = "default";
  std::string order_path;
  std::string slo_ttft = "0";
  std::string hold;  // empty: the preset's
  std::string log_path;
  std::string replicas_path;  // empty: MODEL.replicas.gguf

  void add_to(CLI::App& command);
  // Validates the flags and the combination with --precision; throws InvalidArgument.
  void validate(const std::string& precision) const;
  bool dynamic() const { return morph == "dynamic"; }
  // The --precision a static mode loads with ("all:w8", "all:w4"), or the user's own.
  std::string load_precision(const std::string& precision) const;
};

// For dynamic morphing: the replica store (opening or writing the replica file, with a progress
// bar) and the controller settings, before the budget is planned.
struct MorphPlan {
  std::unique_ptr<ReplicaStore> store;
  MorphConfig config;
  size_t resident_bytes = 0;  // regions + staging
};
MorphPlan plan_morph(const MorphOptions& options, const std::string& model_source, const LlamaModel& model,
                     ThreadPool& pool);

}  // namespace morphserve::cli
