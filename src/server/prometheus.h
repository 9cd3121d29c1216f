#pragma once
// /metrics in the Prometheus text exposition format 0.0.4, with vLLM's metric names under the
// morphserve: prefix and a model_name label on every series, so vLLM dashboards work unchanged.
#include <string>

#include "engine/engine.h"
#include "engine/engine_metrics.h"
#include "morph/morph_status.h"

namespace morphserve::server {

// metrics may be null (the model is still loading): counters and histograms then read zero.
// morph may be null too: the morphing series (layers_quantized, layer_swaps_total,
// layer_swaps_failed_total, morph_suspended, swap_seconds) then read zero.
std::string render_prometheus(const std::string& model_name, const EngineSnapshot& snapshot,
                              const EngineMetrics* metrics, const MorphSummary* morph = nullptr);

// A label value with \, " and newlines escaped as the format requires.
std::string prometheus_label_value(const std::string& value);
// Floats as Prometheus clients print them: "0.001", "1.0", "+Inf", "NaN".
std::string prometheus_number(double value);

}  // namespace morphserve::server
