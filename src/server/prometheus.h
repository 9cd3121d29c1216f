#pragma once
// /metrics in the Prometheus text exposition format 0.0.4, with vLLM's metric names under the
// morphserve: prefix and a model_name label on every series, so vLLM dashboards work unchanged.
#include <optional>
#include <string>
#include <string_view>

#include "engine/engine.h"
#include "engine/engine_metrics.h"
#include "morph/morph_status.h"

namespace morphserve::server {

// Which names /metrics answers under besides morphserve's own (--metrics-compat).
enum class MetricsCompat { None, Vllm };
// "none" / "vllm"; nullopt for anything else.
std::optional<MetricsCompat> parse_metrics_compat(std::string_view name);

struct PrometheusOptions {
  // Vllm: also the series routers read from vLLM under vLLM's own names and labels
  // (vllm:num_requests_waiting, vllm:num_requests_running, vllm:kv_cache_usage_perc and its
  // older name vllm:gpu_cache_usage_perc, vllm:lora_requests_info, vllm:cache_config_info), so the
  // Gateway API Inference Extension's Endpoint Picker and llm-d's scheduler score morphserve pods
  // with their default flags.
  MetricsCompat compat = MetricsCompat::None;
  double now_unix_seconds = 0;  // the value of vllm:lora_requests_info (vLLM writes the time)
};

// metrics may be null (the model is still loading): counters and histograms then read zero.
// morph may be null too: the morphing series (layers_quantized, layer_swaps_total,
// layer_swaps_failed_total, morph_suspended, swap_seconds, precision_degradation) then read zero.
std::string render_prometheus(const std::string& model_name, const EngineSnapshot& snapshot,
                              const EngineMetrics* metrics, const MorphSummary* morph = nullptr,
                              const PrometheusOptions& options = {});

// A label value with \, " and newlines escaped as the format requires.
std::string prometheus_label_value(const std::string& value);
// Floats as Prometheus clients print them: "0.001", "1.0", "+Inf", "NaN".
std::string prometheus_number(double value);

}  // namespace morphserve::server
