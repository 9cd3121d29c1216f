#pragma once
// Dynamic morphing (--morph dynamic): the engine's iteration hook that ties the controller to the
// layer swapper. At every boundary it advances the swaps in flight, feeds the controller, and
// acts on its decision: the next layer of the importance order goes one rung down, or the most
// recently quantized layer goes back to full precision (reverse order). It publishes a status for
// /morph and /metrics and writes --morph-log.
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/memory_budget.h"
#include "engine/engine_metrics.h"
#include "engine/iteration_hook.h"
#include "morph/controller.h"
#include "morph/layer_swapper.h"
#include "morph/morph_log.h"
#include "morph/morph_status.h"
#include "morph/replica_store.h"

namespace morphserve {

struct MorphConfig {
  MorphMode mode = MorphMode::Default;
  ControllerConfig controller = ControllerConfig::preset(MorphMode::Default);
  std::vector<int> order;        // swap-first to swap-last; empty: front to back
  std::string order_source = "front-to-back";
  std::string log_path;          // --morph-log; empty: off
  bool check_invariants = false; // after every action (always on in debug builds)
};

class MorphManager : public IterationHook, public MorphStatusSource {
 public:
  // Allocates the staging slots from `backend` and moves the model's layer weights into regions
  // allocated from it (LayerSwapper::take_weights; OutOfBudget when they do not fit). The model,
  // store and backend must outlive the manager; attach() points the runner at the regions.
  MorphManager(LlamaModel& model, std::unique_ptr<ReplicaStore> store, const MorphConfig& config, Backend& backend);
  ~MorphManager() override;

  // Regions + staging the manager will reserve, for planning a budget.
  static size_t resident_bytes_for(const ReplicaStore& store, const ControllerConfig& controller);

  void attach(KvBlockPool& kv, LlamaRunner& runner) override;
  void at_iteration_boundary(const PressureSignals& signals, KvBlockPool& kv, LlamaRunner& runner) override;
  bool wants_idle_ticks() const override { return wants_ticks_.load(std::memory_order_acquire); }
  void detach(KvBlockPool& kv, LlamaRunner& runner) override;

  nlohmann::json status() const override;
  MorphSummary summary() const override;

  const std::vector<int>& order() const { return config_.order; }

 private:
  void act(const MorphDecision& decision, const PressureSignals& signals, KvBlockPool& kv, LlamaRunner& runner);
  // The swap down the order would take next, or nullopt: the first full-precision layer of the
  // order (while under the quantized-layer cap) to the controller's first step, else the first
  // quantized layer one rung further down. capacity() and swap_next_down() both ask this one place.
  struct SwapDownStep {
    int layer;
    DType target;
  };
  std::optional<SwapDownStep> next_swap_down() const;
  bool swap_next_down(KvBlockPool& kv, const MorphDecision& decision, const PressureSignals& signals);
  bool restore_last(KvBlockPool& kv, const MorphDecision& decision, const PressureSignals& signals);
  MorphCapacity capacity(const KvBlockPool& kv) const;
  int quantized_layers() const;
  int quantized_layer_cap() const;
  void record_finished(const SwapRecord& record, const PressureSignals& signals);
  void record_failed(const SwapRecord& record, const PressureSignals& signals);
  // Stops starting swaps for good: a model or replica file changed on disk, so no replica can be
  // trusted until a restart re-validates them. Serving goes on at the current precisions.
  void suspend(const std::string& why, const PressureSignals& signals);
  void publish(const KvBlockPool& kv, const MorphDecision& decision);
  nlohmann::json log_entry(std::string_view event, const MorphDecision* decision, const PressureSignals& signals) const;

  LlamaModel& model_;
  std::unique_ptr<ReplicaStore> store_;
  MorphConfig config_;
  // The regions, slots and swap copies go through the backend; the destructor waits for the
  // swapper's copies before its buffers go.
  Backend& backend_;
  Controller controller_;
  LayerSwapper swapper_;
  MorphLog log_;
  std::vector<int> swapped_;  // layers that left full precision, in the order they did (engine thread)
  std::string suspended_;     // why morphing stopped for good; empty while it runs (engine thread)
  double next_source_check_ = 0.0;  // engine seconds
  double next_publish_ = 0.0;       // engine seconds
  std::atomic<bool> wants_ticks_{false};
  std::atomic<uint64_t> swaps_down_{0};
  std::atomic<uint64_t> swaps_up_{0};
  std::atomic<uint64_t> swaps_failed_{0};
  Histogram swap_seconds_;

  mutable std::mutex status_mutex_;
  nlohmann::json status_;
  MorphSummary summary_;
  nlohmann::json last_action_;   // the last decision that did something
  std::string last_error_;
};

}  // namespace morphserve
