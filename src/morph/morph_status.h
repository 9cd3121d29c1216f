#pragma once
// What the server may read about morphing (DESIGN.md §2: server -> morph, read-only status):
// the per-layer precision map, the KV segments lent by layer regions, the controller's last
// decision, and the counters /metrics exposes. Safe to call from any thread.
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/engine_metrics.h"
#include "model/llama_weights.h"

namespace morphserve {

struct MorphSummary {
  int n_layers = 0;
  int layers_w8 = 0;  // layers whose weights are Q8_0 now
  int layers_w4 = 0;  // ... Q4_0 now
  uint64_t swaps_down = 0;
  uint64_t swaps_up = 0;
  int swaps_in_flight = 0;
  uint64_t swaps_failed = 0;  // swaps abandoned because a source file read failed or changed
  bool suspended = false;     // morphing stopped for good (a model or replica file changed)
  // Share of the decoder layers' linear-weight bytes (counted at full precision) whose layer runs
  // below full precision now: 0 at full precision, 1 with every layer on a replica. Full
  // precision is what the model file stores; `static-w8`/`static-w4` count as below it.
  double precision_degradation = 0;
  Histogram::Snapshot swap_seconds;  // empty when the mode never swaps
};

class MorphStatusSource {
 public:
  virtual ~MorphStatusSource() = default;
  virtual nlohmann::json status() const = 0;  // GET /morph
  virtual MorphSummary summary() const = 0;   // /metrics
};

// The status of a server that does not morph (--morph off, static-w8, static-w4): the layers'
// precisions are fixed at load.
class FixedPrecisionStatus : public MorphStatusSource {
 public:
  FixedPrecisionStatus(std::string mode, const LlamaModel& model);
  nlohmann::json status() const override { return status_; }
  MorphSummary summary() const override { return summary_; }

 private:
  nlohmann::json status_;
  MorphSummary summary_;
};

// Histogram buckets of swap durations, seconds.
std::vector<double> swap_seconds_buckets();

}  // namespace morphserve
