#pragma once
// The pressure controller (DESIGN.md §5, paper §4.3): run by the engine thread once per iteration
// boundary, it smooths the engine's raw signals and decides whether to swap the next layer down,
// restore the last one, or hold. Pure policy: it owns no memory and starts nothing, so it can be
// tested with synthetic signals.
//
// Pressure is any of: smoothed KV utilisation at or above the high-water mark; waiting requests
// that need more blocks than are free; a request queued longer than the queue-delay limit; first
// tokens slower than the TTFT target (a fraction of --slo-ttft); a preemption in the window. A
// swap down needs pressure on `pressure_iterations` consecutive boundaries; while it lasts, the
// next layer follows as soon as a swap slot is free. Hysteresis is the gap between the two
// thresholds and the hold: a restore needs calm (utilisation under the low-water mark, nobody
// waiting, no pressure) held for `hold_seconds`, and room: the blocks in use must fit in the
// capacity left after the restore, under the low-water mark.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/dtype.h"
#include "engine/iteration_hook.h"

namespace morphserve {

enum class MorphMode { Default, Performance, Accuracy };
std::optional<MorphMode> parse_morph_mode(std::string_view name);
std::string_view morph_mode_name(MorphMode mode);

struct ControllerConfig {
  double high_water = 0.85;          // smoothed KV utilisation that counts as pressure
  double low_water = 0.50;           // utilisation under which a restore may start
  int pressure_iterations = 4;       // K: consecutive pressured boundaries before a swap down
  double hold_seconds = 5.0;         // T: calm this long before the first restore
  double restore_interval_seconds = 0.5;  // then at most one restore per interval
  double queue_delay_seconds = 0.5;  // a request queued longer than this is pressure
  double slo_ttft_seconds = 0.0;     // --slo-ttft; 0 turns the TTFT signal off
  double ttft_fraction = 0.8;        // TTFT above this fraction of the SLO is pressure
  double smoothing_seconds = 0.5;    // time constant of the utilisation and TTFT averages
  int max_swaps_in_flight = 1;       // staging slots: swaps that may overlap
  DType first_step = DType::Q4_0;    // the rung a full-precision layer is swapped to first
  double max_quantized_fraction = 1.0;  // of the layers, at most this many leave full precision

  static ControllerConfig preset(MorphMode mode);
  void validate() const;  // throws InvalidArgument
};

// What the controller knows about the layers (filled by the morph manager).
struct MorphCapacity {
  bool can_swap_down = false;      // a layer is left to quantize (or to step further down)
  bool can_restore = false;        // a quantized layer is idle and may go back
  int64_t restore_frees_blocks = 0;  // capacity the next restore takes away
  int swaps_in_flight = 0;
  bool restore_in_flight = false;  // a layer is on its way back up (pressure may abandon it)
  int layers_quantized = 0;
  int n_layers = 0;
};

enum class MorphAction { Hold, SwapDown, Restore, AbortRestore };
std::string_view morph_action_name(MorphAction action);

struct SmoothedSignals {
  double kv_utilisation = 0.0;  // used / total, smoothed
  double ttft_seconds = 0.0;    // recent first-token latency, smoothed (0 before any)
  double oldest_wait_seconds = 0.0;
  int64_t blocks_free = 0;
  int64_t blocks_needed_by_waiting = 0;
  int64_t num_waiting = 0;
  int64_t recent_preemptions = 0;  // within the smoothing window
};

struct MorphDecision {
  MorphAction action = MorphAction::Hold;
  std::string reason;          // why (the signals that tripped it)
  SmoothedSignals signals;
  int pressure_streak = 0;     // consecutive pressured boundaries
  double calm_seconds = 0.0;   // how long calm has held
};

class Controller {
 public:
  explicit Controller(const ControllerConfig& config);

  MorphDecision step(const PressureSignals& raw, const MorphCapacity& capacity);

  const ControllerConfig& config() const { return config_; }

 private:
  // The reason there is pressure now, or empty.
  std::string pressure_reason(const PressureSignals& raw) const;

  ControllerConfig config_;
  SmoothedSignals smoothed_;
  bool primed_ = false;
  double last_time_ = 0.0;
  int64_t last_preemptions_ = 0;
  double preemption_seen_at_ = -1e300;
  int pressure_streak_ = 0;
  std::optional<double> calm_since_;
  double last_restore_at_ = -1e300;
};

}  // namespace morphserve
