#include "morph/controller.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/error.h"

namespace morphserve {

std::optional<MorphMode> parse_morph_mode(std::string_view name) {
  if (name == "default") return MorphMode::Default;
  if (name == "performance") return MorphMode::Performance;
  if (name == "accuracy") return MorphMode::Accuracy;
  return std::nullopt;
}

std::string_view morph_mode_name(MorphMode mode) {
  switch (mode) {
    case MorphMode::Default: return "default";
    case MorphMode::Performance: return "performance";
    case MorphMode::Accuracy: return "accuracy";
  }
  return "default";
}

std::string_view morph_action_name(MorphAction action) {
  switch (action) {
    case MorphAction::Hold: return "hold";
    case MorphAction::SwapDown: return "swap_down";
    case MorphAction::Restore: return "restore";
    case MorphAction::AbortRestore: return "abort_restore";
  }
  return "hold";
}

ControllerConfig ControllerConfig::preset(MorphMode mode) {
  ControllerConfig c;
  switch (mode) {
    case MorphMode::Performance:
      // Quantize early and keep it: latency first.
      c.high_water = 0.70;
      c.low_water = 0.40;
      c.pressure_iterations = 2;
      c.hold_seconds = 10.0;
      c.queue_delay_seconds = 0.25;
      c.max_swaps_in_flight = 2;
      c.first_step = DType::Q4_0;
      c.max_quantized_fraction = 1.0;
      break;
    case MorphMode::Accuracy:
      // Quantize late, gently (W8 first), never more than half the layers, and restore soon.
      c.high_water = 0.95;
      c.low_water = 0.60;
      c.pressure_iterations = 8;
      c.hold_seconds = 2.0;
      c.queue_delay_seconds = 1.0;
      c.max_swaps_in_flight = 1;
      c.first_step = DType::Q8_0;
      c.max_quantized_fraction = 0.5;
      break;
    case MorphMode::Default:
      break;
  }
  return c;
}

void ControllerConfig::validate() const {
  if (!(low_water >= 0.0 && low_water < high_water && high_water <= 1.0)) {
    fail<InvalidArgument>("morph water marks must satisfy 0 <= low ({}) < high ({}) <= 1", low_water, high_water);
  }
  if (pressure_iterations < 1) fail<InvalidArgument>("pressure iterations must be at least 1");
  if (!(hold_seconds >= 0.0) || !(queue_delay_seconds > 0.0) || !(slo_ttft_seconds >= 0.0) || !(smoothing_seconds > 0.0)) {
    fail<InvalidArgument>("morph hold, queue-delay, SLO and smoothing times must be non-negative numbers");
  }
  if (max_swaps_in_flight < 1) fail<InvalidArgument>("at least one swap must be allowed in flight");
  if (!(max_quantized_fraction > 0.0 && max_quantized_fraction <= 1.0)) {
    fail<InvalidArgument>("the quantized fraction must be in (0, 1], got {}", max_quantized_fraction);
  }
  if (first_step != DType::Q8_0 && first_step != DType::Q4_0) fail<InvalidArgument>("the first step must be w8 or w4");
}

Controller::Controller(const ControllerConfig& config) : config_(config) { config_.validate(); }

std::string Controller::pressure_reason(const PressureSignals& raw) const {
  const SmoothedSignals& s = smoothed_;
  if (s.kv_utilisation >= config_.high_water) {
    return fmt::format("kv utilisation {:.2f} >= {:.2f}", s.kv_utilisation, config_.high_water);
  }
  if (raw.num_waiting > 0 && raw.blocks_needed_by_waiting > raw.kv_blocks_free) {
    return fmt::format("{} waiting requests need {} blocks, {} free", raw.num_waiting, raw.blocks_needed_by_waiting,
                       raw.kv_blocks_free);
  }
  if (raw.oldest_wait_seconds > config_.queue_delay_seconds) {
    return fmt::format("a request has queued {:.3f}s > {:.3f}s", raw.oldest_wait_seconds, config_.queue_delay_seconds);
  }
  if (config_.slo_ttft_seconds > 0.0 && s.ttft_seconds > config_.ttft_fraction * config_.slo_ttft_seconds) {
    return fmt::format("TTFT {:.3f}s > {:.0f}% of the {:.3f}s SLO", s.ttft_seconds, 100.0 * config_.ttft_fraction,
                       config_.slo_ttft_seconds);
  }
  if (s.recent_preemptions > 0) return fmt::format("{} preemptions in the last {:.1f}s", s.recent_preemptions, config_.smoothing_seconds);
  return {};
}

MorphDecision Controller::step(const PressureSignals& raw, const MorphCapacity& capacity) {
  // Exponential averages with a time constant, so the window means the same at 1 ms and at
  // 100 ms per iteration.
  const double utilisation = raw.kv_blocks_total > 0
                                 ? static_cast<double>(raw.kv_blocks_used) / static_cast<double>(raw.kv_blocks_total)
                                 : 0.0;
  // The first reading is taken as it is (there is nothing to average it with).
  const double alpha =
      primed_ ? 1.0 - std::exp(-std::max(0.0, raw.now_seconds - last_time_) / config_.smoothing_seconds) : 1.0;
  smoothed_.kv_utilisation += alpha * (utilisation - smoothed_.kv_utilisation);
  if (raw.ttft_count > 0) {
    smoothed_.ttft_seconds = smoothed_.ttft_seconds == 0.0 ? raw.ttft_max_seconds
                                                           : smoothed_.ttft_seconds + 0.5 * (raw.ttft_max_seconds - smoothed_.ttft_seconds);
  } else if (raw.num_waiting == 0 && raw.num_running == 0) {
    smoothed_.ttft_seconds *= 1.0 - alpha;  // idle: old latencies stop counting
  }
  if (primed_ && raw.preemptions_total > last_preemptions_) preemption_seen_at_ = raw.now_seconds;
  smoothed_.recent_preemptions = raw.now_seconds - preemption_seen_at_ <= config_.smoothing_seconds
                                     ? std::max<int64_t>(1, raw.preemptions_total - last_preemptions_)
                                     : 0;
  smoothed_.oldest_wait_seconds = raw.oldest_wait_seconds;
  smoothed_.blocks_free = raw.kv_blocks_free;
  smoothed_.blocks_needed_by_waiting = raw.blocks_needed_by_waiting;
  smoothed_.num_waiting = raw.num_waiting;
  last_preemptions_ = raw.preemptions_total;
  last_time_ = raw.now_seconds;
  primed_ = true;

  MorphDecision decision;
  decision.signals = smoothed_;
  const std::string pressure = pressure_reason(raw);
  if (!pressure.empty()) {
    ++pressure_streak_;
    calm_since_.reset();
  } else {
    pressure_streak_ = 0;
  }
  const bool calm = pressure.empty() && raw.num_waiting == 0 && smoothed_.kv_utilisation < config_.low_water;
  if (!calm) {
    calm_since_.reset();
  } else if (!calm_since_) {
    calm_since_ = raw.now_seconds;
  }
  decision.pressure_streak = pressure_streak_;
  decision.calm_seconds = calm_since_ ? raw.now_seconds - *calm_since_ : 0.0;

  if (!pressure.empty()) {
    if (pressure_streak_ >= config_.pressure_iterations && capacity.can_swap_down &&
        capacity.swaps_in_flight < config_.max_swaps_in_flight) {
      // The streak is not reset: while pressure lasts, the next layer goes as soon as a staging
      // slot is free. Measured on the pressure experiment, waiting K more iterations after every
      // swap stretched a 12-layer ramp to 9 s, and the requests arriving meanwhile missed their SLO.
      decision.action = MorphAction::SwapDown;
      decision.reason = fmt::format("{} for {} iterations", pressure, pressure_streak_);
    } else if (capacity.restore_in_flight && pressure_streak_ >= config_.pressure_iterations) {
      decision.action = MorphAction::AbortRestore;  // the manager aborts only a draining restore
      decision.reason = pressure;
    } else {
      decision.reason = pressure;
    }
    return decision;
  }
  if (calm && decision.calm_seconds >= config_.hold_seconds && capacity.can_restore &&
      raw.now_seconds - last_restore_at_ >= config_.restore_interval_seconds &&
      capacity.swaps_in_flight < config_.max_swaps_in_flight) {
    const int64_t capacity_after = raw.kv_blocks_total - capacity.restore_frees_blocks;
    if (capacity_after > 0 &&
        static_cast<double>(raw.kv_blocks_used) <= config_.low_water * static_cast<double>(capacity_after)) {
      decision.action = MorphAction::Restore;
      decision.reason = fmt::format("calm for {:.1f}s, {} blocks used fit in {} after the restore",
                                    decision.calm_seconds, raw.kv_blocks_used, capacity_after);
      last_restore_at_ = raw.now_seconds;
    }
  }
  return decision;
}

}  // namespace morphserve
