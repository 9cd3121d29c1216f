#include "morph/morph_manager.h"

#include <algorithm>

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "core/error.h"
#include "core/units.h"
#include "engine/kv_block_pool.h"
#include "morph/morph_order.h"

namespace morphserve {

namespace {

nlohmann::json signals_json(const SmoothedSignals& s) {
  return {{"kv_utilisation", s.kv_utilisation},
          {"ttft_seconds", s.ttft_seconds},
          {"oldest_wait_seconds", s.oldest_wait_seconds},
          {"blocks_free", s.blocks_free},
          {"blocks_needed_by_waiting", s.blocks_needed_by_waiting},
          {"num_waiting", s.num_waiting},
          {"recent_preemptions", s.recent_preemptions}};
}

nlohmann::json decision_json(const MorphDecision& d) {
  return {{"action", morph_action_name(d.action)},
          {"reason", d.reason},
          {"pressure_streak", d.pressure_streak},
          {"calm_seconds", d.calm_seconds},
          {"signals", signals_json(d.signals)}};
}

nlohmann::json controller_json(const ControllerConfig& c) {
  return {{"high_water", c.high_water},
          {"low_water", c.low_water},
          {"pressure_iterations", c.pressure_iterations},
          {"hold_seconds", c.hold_seconds},
          {"restore_interval_seconds", c.restore_interval_seconds},
          {"queue_delay_seconds", c.queue_delay_seconds},
          {"slo_ttft_seconds", c.slo_ttft_seconds},
          {"max_swaps_in_flight", c.max_swaps_in_flight},
          {"first_step", dtype_name(c.first_step)},
          {"max_quantized_fraction", c.max_quantized_fraction}};
}

std::vector<int> checked_order(std::vector<int> order, int n_layers) {
  if (order.empty()) return front_to_back_order(n_layers);
  if (const std::string problem = order_problem(std::vector<int64_t>(order.begin(), order.end()), n_layers);
      !problem.empty()) {
    fail<InvalidArgument>("the morph order {}", problem);
  }
  return order;
}

}  // namespace

size_t MorphManager::resident_bytes_for(const ReplicaStore& store, const ControllerConfig& controller) {
  return LayerSwapper::region_bytes_for(store) + LayerSwapper::staging_bytes_for(store, controller.max_swaps_in_flight);
}

MorphManager::MorphManager(LlamaModel& model, std::unique_ptr<ReplicaStore> store, const MorphConfig& config,
                           Backend& backend)
    : model_(model),
      store_(std::move(store)),
      config_(config),
      backend_(backend),
      controller_(config.controller),
      swapper_(*store_, config.controller.max_swaps_in_flight, backend_),
      log_(config.log_path),
      swap_seconds_(swap_seconds_buckets()) {
  config_.order = checked_order(config_.order, swapper_.n_layers());
  // Now, before the engine allocates its KV pool and workspace: for a moment the budget carries
  // one layer twice, which the KV's share of the budget has room for.
  swapper_.take_weights(model_);
#ifndef NDEBUG
  config_.check_invariants = true;
#endif
}

MorphManager::~MorphManager() { swapper_.wait_idle(); }

void MorphManager::attach(KvBlockPool& kv, LlamaRunner& runner) {
  swapper_.attach(model_, runner);
  wants_ticks_.store(store_->reads_files(), std::memory_order_release);
  spdlog::info("morphing: {} layers in regions of {} each on average, {} staging; replicas from {}; order {} ({})",
               swapper_.n_layers(), format_size(LayerSwapper::region_bytes_for(*store_) / std::max(1, swapper_.n_layers())),
               format_size(backend_.budget().held(kStagingAccount)), store_->description(),
               fmt::join(config_.order, ","), config_.order_source);
  publish(kv, MorphDecision{});
}

void MorphManager::detach(KvBlockPool&, LlamaRunner&) { swapper_.wait_idle(); }

int MorphManager::quantized_layers() const { return static_cast<int>(swapped_.size()); }

int MorphManager::quantized_layer_cap() const {
  const int n = swapper_.n_layers();
  return std::max(1, static_cast<int>(config_.controller.max_quantized_fraction * n + 1e-9));
}

MorphCapacity MorphManager::capacity(const KvBlockPool& kv) const {
  MorphCapacity c;
  c.n_layers = swapper_.n_layers();
  c.layers_quantized = quantized_layers();
  c.swaps_in_flight = swapper_.in_flight();
  for (int l = 0; l < c.n_layers; ++l) {
    if (swapper_.busy(l) && swapper_.state(l, kv).heading_to == store_->full_precision(l)) c.restore_in_flight = true;
  }
  c.can_swap_down = next_swap_down().has_value();
  if (!swapped_.empty() && !swapper_.busy(swapped_.back())) {
    c.can_restore = true;
    for (const RegionSegment& s : swapper_.state(swapped_.back(), kv).segments) c.restore_frees_blocks += kv.segment_blocks(s.segment);
  }
  return c;
}

namespace {
// How often the files swaps read from are checked while no swap touches them, so that /morph
// tells of a deleted or truncated file before a burst needs it.
constexpr double kSourceCheckSeconds = 1.0;
}  // namespace

void MorphManager::at_iteration_boundary(const PressureSignals& signals, KvBlockPool& kv, LlamaRunner& runner) {
  bool changed = false;
  for (const SwapRecord& record : swapper_.advance(kv, runner)) {
    if (record.error.empty()) record_finished(record, signals);
    else record_failed(record, signals);
    changed = true;
  }
  // A swap down that failed left its layer at full precision.
  std::erase_if(swapped_, [&](int l) { return !swapper_.busy(l) && swapper_.precision(l) == store_->full_precision(l); });
  if (suspended_.empty() && signals.now_seconds >= next_source_check_) {
    next_source_check_ = signals.now_seconds + kSourceCheckSeconds;
    if (std::string why = store_->any_source_problem(); !why.empty()) {
      suspend(why, signals);
      changed = true;
    }
  }
  MorphDecision decision;
  if (suspended_.empty()) {
    decision = controller_.step(signals, capacity(kv));
    if (decision.action != MorphAction::Hold) {
      try {
        act(decision, signals, kv, runner);
      } catch (const ModelFileError& e) {
        suspend(e.what(), signals);
      } catch (const std::exception& e) {
        // Nothing started; the next decision may try again.
        last_error_ = e.what();
        spdlog::error("morph action {} failed: {}", morph_action_name(decision.action), e.what());
      }
      changed = true;
    }
  } else {
    decision.reason = "morphing suspended: " + suspended_;
  }
  if (config_.check_invariants) swapper_.check_invariants(kv);
  // Idle ticks drive swaps in flight and restores; a store whose files can change also keeps
  // them coming so that a deleted or truncated file shows in /morph before a burst needs it.
  wants_ticks_.store(swapper_.in_flight() > 0 || !swapped_.empty() || (suspended_.empty() && store_->reads_files()),
                     std::memory_order_release);
  // /morph stays at most a quarter second behind the engine, busy or idle.
  if (changed || signals.iteration % 16 == 0 || signals.now_seconds >= next_publish_) {
    next_publish_ = signals.now_seconds + 0.25;
    publish(kv, decision);
  }
}

void MorphManager::act(const MorphDecision& decision, const PressureSignals& signals, KvBlockPool& kv,
                       LlamaRunner& runner) {
  switch (decision.action) {
    case MorphAction::SwapDown:
      swap_next_down(kv, decision, signals);
      break;
    case MorphAction::Restore:
      restore_last(kv, decision, signals);
      break;
    case MorphAction::AbortRestore:
      for (int l = 0; l < swapper_.n_layers(); ++l) {
        const LayerMorphState s = swapper_.state(l, kv);
        if (!s.heading_to || *s.heading_to != store_->full_precision(l)) continue;
        if (swapper_.abort_restore(l, kv, runner)) {
          nlohmann::json entry = log_entry("restore_aborted", &decision, signals);
          entry["layer"] = l;
          log_.write(entry);
          std::lock_guard lock(status_mutex_);
          last_action_ = std::move(entry);
        }
      }
      break;
    case MorphAction::Hold:
      break;
  }
}

std::optional<MorphManager::SwapDownStep> MorphManager::next_swap_down() const {
  // First choice: the next layer of the order still at full precision.
  if (quantized_layers() < quantized_layer_cap()) {
    for (int l : config_.order) {
      const auto& ladder = swapper_.ladder(l);
      if (swapper_.busy(l) || swapper_.precision(l) != ladder.front() || ladder.size() < 2) continue;
      const bool has_first_step = std::find(ladder.begin(), ladder.end(), config_.controller.first_step) != ladder.end();
      return SwapDownStep{l, has_first_step ? config_.controller.first_step : ladder[1]};
    }
  }
  // Then: a quantized layer one rung further down, in the same order.
  for (int l : config_.order) {
    const auto& ladder = swapper_.ladder(l);
    const auto rung = std::find(ladder.begin(), ladder.end(), swapper_.precision(l));
    if (swapper_.busy(l) || rung == ladder.begin() || rung + 1 >= ladder.end()) continue;
    return SwapDownStep{l, *(rung + 1)};
  }
  return std::nullopt;
}

bool MorphManager::swap_next_down(KvBlockPool& kv, const MorphDecision& decision, const PressureSignals& signals) {
  const std::optional<SwapDownStep> step = next_swap_down();
  if (!step) return false;
  const int layer = step->layer;
  const DType target = step->target;
  const DType from = swapper_.precision(layer);
  if (!swapper_.start(layer, target, kv)) return false;
  if (from == store_->full_precision(layer)) swapped_.push_back(layer);
  nlohmann::json entry = log_entry("swap_down_start", &decision, signals);
  entry["layer"] = layer;
  entry["from"] = dtype_name(from);
  entry["to"] = dtype_name(target);
  spdlog::info("morph: layer {} {} -> {} ({})", layer, dtype_name(from), dtype_name(target), decision.reason);
  log_.write(entry);
  std::lock_guard lock(status_mutex_);
  last_action_ = std::move(entry);
  return true;
}

bool MorphManager::restore_last(KvBlockPool& kv, const MorphDecision& decision, const PressureSignals& signals) {
  if (swapped_.empty()) return false;
  const int layer = swapped_.back();
  const DType from = swapper_.precision(layer);
  const DType target = store_->full_precision(layer);
  if (!swapper_.start(layer, target, kv)) return false;
  nlohmann::json entry = log_entry("restore_start", &decision, signals);
  entry["layer"] = layer;
  entry["from"] = dtype_name(from);
  entry["to"] = dtype_name(target);
  spdlog::info("morph: restoring layer {} {} -> {} ({})", layer, dtype_name(from), dtype_name(target), decision.reason);
  log_.write(entry);
  std::lock_guard lock(status_mutex_);
  last_action_ = std::move(entry);
  return true;
}

void MorphManager::record_finished(const SwapRecord& record, const PressureSignals& signals) {
  (record.direction == SwapDirection::Down ? swaps_down_ : swaps_up_).fetch_add(1);
  swap_seconds_.observe(record.seconds);
  if (record.to == store_->full_precision(record.layer)) std::erase(swapped_, record.layer);
  nlohmann::json entry = log_entry(record.direction == SwapDirection::Down ? "swap_down_done" : "restore_done", nullptr, signals);
  entry["layer"] = record.layer;
  entry["from"] = dtype_name(record.from);
  entry["to"] = dtype_name(record.to);
  entry["seconds"] = record.seconds;
  entry["blocks_migrated"] = record.blocks_migrated;
  entry["kv_blocks_delta"] = record.kv_blocks_delta;
  spdlog::info("morph: layer {} now {} after {:.1f} ms ({:+} KV blocks, {} migrated)", record.layer, dtype_name(record.to),
               record.seconds * 1e3, record.kv_blocks_delta, record.blocks_migrated);
  log_.write(std::move(entry));
}

void MorphManager::record_failed(const SwapRecord& record, const PressureSignals& signals) {
  swaps_failed_.fetch_add(1);
  last_error_ = record.error;
  spdlog::error("morph: layer {} {} -> {} failed, it stays at {}: {}", record.layer, dtype_name(record.from),
                dtype_name(record.to), dtype_name(record.from), record.error);
  nlohmann::json entry = log_entry("swap_failed", nullptr, signals);
  entry["layer"] = record.layer;
  entry["from"] = dtype_name(record.from);
  entry["to"] = dtype_name(record.to);
  entry["error"] = record.error;
  log_.write(std::move(entry));
  if (record.source_changed) suspend(record.error, signals);
}

void MorphManager::suspend(const std::string& why, const PressureSignals& signals) {
  if (!suspended_.empty()) return;
  suspended_ = why;
  last_error_ = why;
  spdlog::error("morphing suspended: {}. Serving goes on with {} of {} layers quantized; restart the server to "
                "morph again (after `morphserve quantize` if the replica file is gone)",
                why, quantized_layers(), swapper_.n_layers());
  nlohmann::json entry = log_entry("suspended", nullptr, signals);
  entry["error"] = why;
  log_.write(std::move(entry));
}

nlohmann::json MorphManager::log_entry(std::string_view event, const MorphDecision* decision,
                                       const PressureSignals& s) const {
  nlohmann::json entry = {{"event", event},
                          {"engine_seconds", s.now_seconds},
                          {"iteration", s.iteration},
                          {"raw", {{"kv_blocks_total", s.kv_blocks_total},
                                   {"kv_blocks_used", s.kv_blocks_used},
                                   {"kv_blocks_free", s.kv_blocks_free},
                                   {"num_waiting", s.num_waiting},
                                   {"num_running", s.num_running},
                                   {"oldest_wait_seconds", s.oldest_wait_seconds},
                                   {"blocks_needed_by_waiting", s.blocks_needed_by_waiting},
                                   {"preemptions_total", s.preemptions_total}}}};
  if (decision) {
    entry["reason"] = decision->reason;
    entry["signals"] = signals_json(decision->signals);
  }
  return entry;
}

void MorphManager::publish(const KvBlockPool& kv, const MorphDecision& decision) {
  nlohmann::json layers = nlohmann::json::array();
  MorphSummary summary;
  summary.n_layers = swapper_.n_layers();
  size_t full_bytes = 0;
  size_t degraded_bytes = 0;
  for (int l = 0; l < swapper_.n_layers(); ++l) {
    const LayerMorphState s = swapper_.state(l, kv);
    if (s.precision == DType::Q8_0 && s.precision != store_->full_precision(l)) ++summary.layers_w8;
    if (s.precision == DType::Q4_0 && s.precision != store_->full_precision(l)) ++summary.layers_w4;
    const size_t layer_bytes = store_->replica(l, store_->full_precision(l)).bytes();
    full_bytes += layer_bytes;
    if (s.precision != store_->full_precision(l)) degraded_bytes += layer_bytes;
    nlohmann::json segments = nlohmann::json::array();
    for (const RegionSegment& seg : s.segments) {
      segments.push_back({{"id", seg.segment},
                          {"offset", seg.offset},
                          {"bytes", seg.bytes},
                          {"blocks", kv.segment_blocks(seg.segment)},
                          {"used_blocks", kv.segment_used_blocks(seg.segment)},
                          {"allocating", kv.is_allocating(seg.segment)}});
    }
    layers.push_back({{"layer", l},
                      {"precision", dtype_name(s.precision)},
                      {"full_precision", dtype_name(store_->full_precision(l))},
                      {"heading_to", s.heading_to ? nlohmann::json(dtype_name(*s.heading_to)) : nlohmann::json(nullptr)},
                      {"phase", s.phase},
                      {"on_staging", s.on_staging},
                      {"region_bytes", s.region_bytes},
                      {"segments", std::move(segments)}});
  }
  summary.swaps_down = swaps_down_.load();
  summary.swaps_up = swaps_up_.load();
  summary.swaps_in_flight = swapper_.in_flight();
  summary.swaps_failed = swaps_failed_.load();
  summary.suspended = !suspended_.empty();
  summary.precision_degradation = full_bytes > 0 ? static_cast<double>(degraded_bytes) / static_cast<double>(full_bytes) : 0.0;
  nlohmann::json accounts = nlohmann::json::object();
  const MemoryBudget& budget = backend_.budget();
  for (const auto& [name, bytes] : budget.accounts()) accounts[name] = bytes;
  std::lock_guard lock(status_mutex_);
  status_ = {{"mode", "dynamic"},
             {"preset", morph_mode_name(config_.mode)},
             {"order", config_.order},
             {"order_source", config_.order_source},
             {"replicas", store_->description()},
             {"layers", std::move(layers)},
             {"precision_degradation", summary.precision_degradation},
             {"kv", {{"blocks_total", kv.capacity_blocks()},
                     {"blocks_used", kv.used_blocks()},
                     {"blocks_free", kv.free_blocks()},
                     {"segments", kv.segment_ids().size()}}},
             {"controller", {{"config", controller_json(config_.controller)},
                             {"last_decision", decision_json(decision)},
                             {"last_action", last_action_}}},
             {"swaps", {{"down", summary.swaps_down},
                        {"up", summary.swaps_up},
                        {"failed", swaps_failed_.load()},
                        {"in_flight", summary.swaps_in_flight}}},
             {"budget", {{"bytes", budget.budget()}, {"used", budget.used()}, {"peak", budget.peak()}, {"accounts", accounts}}},
             {"last_error", last_error_},
             {"suspended", suspended_.empty() ? nlohmann::json(nullptr) : nlohmann::json(suspended_)}};
  summary_ = summary;
}

nlohmann::json MorphManager::status() const {
  std::lock_guard lock(status_mutex_);
  return status_;
}

MorphSummary MorphManager::summary() const {
  MorphSummary s;
  {
    std::lock_guard lock(status_mutex_);
    s = summary_;
  }
  s.swap_seconds = swap_seconds_.snapshot();
  return s;
}

}  // namespace morphserve
