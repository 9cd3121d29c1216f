#include "server/prometheus.h"

#include <cmath>
#include <utility>

#include <fmt/format.h>

namespace morphserve::server {

namespace {

class Writer {
 public:
  Writer(const std::string& model_name, std::string prefix)
      : prefix_(std::move(prefix)), labels_(fmt::format("model_name=\"{}\"", prometheus_label_value(model_name))) {}

  void header(const std::string& name, const char* type, const char* help) {
    out_ += fmt::format("# HELP {}{} {}\n# TYPE {}{} {}\n", prefix_, name, help, prefix_, name, type);
  }
  void sample(const std::string& name, double value, const std::string& extra_labels = "") {
    out_ += fmt::format("{}{}{{{}{}}} {}\n", prefix_, name, labels_, extra_labels, prometheus_number(value));
  }
  void gauge(const std::string& name, double value, const char* help) {
    header(name, "gauge", help);
    sample(name, value);
  }
  void counter(const std::string& name, double value, const char* help) {
    header(name, "counter", help);
    sample(name, value);
  }
  void histogram(const std::string& name, const Histogram::Snapshot& h, const char* help) {
    header(name, "histogram", help);
    for (size_t i = 0; i < h.upper_bounds.size(); ++i) {
      const double count = i < h.cumulative_counts.size() ? static_cast<double>(h.cumulative_counts[i]) : 0.0;
      sample(name + "_bucket", count, fmt::format(",le=\"{}\"", prometheus_number(h.upper_bounds[i])));
    }
    sample(name + "_bucket", static_cast<double>(h.count), ",le=\"+Inf\"");
    sample(name + "_sum", h.sum);
    sample(name + "_count", static_cast<double>(h.count));
  }
  std::string take() { return std::move(out_); }

 private:
  std::string prefix_;
  std::string labels_;
  std::string out_;
};

// The series the Endpoint Picker and llm-d's scheduler read, under vLLM's names. morphserve serves
// no LoRA adapters, so lora_requests_info lists none (max_lora 0), as vLLM does without --enable-lora
// adapters loaded; pickers then treat every pod as adapter-free.
void write_vllm_compat(Writer& w, const EngineSnapshot& s, double usage, double now_unix_seconds) {
  w.gauge("num_requests_running", static_cast<double>(s.num_running), "Number of requests in model execution batches.");
  w.gauge("num_requests_waiting", static_cast<double>(s.num_waiting), "Number of requests waiting to be processed.");
  w.gauge("kv_cache_usage_perc", usage, "KV-cache usage. 1 means 100 percent usage.");
  w.gauge("gpu_cache_usage_perc", usage, "KV-cache usage. 1 means 100 percent usage (vLLM's name before 0.10).");
  w.header("lora_requests_info", "gauge", "Running stats on LoRA requests.");
  w.sample("lora_requests_info", now_unix_seconds, ",max_lora=\"0\",running_lora_adapters=\"\",waiting_lora_adapters=\"\"");
  w.header("cache_config_info", "gauge", "Information of the KV cache configuration.");
  w.sample("cache_config_info", 1,
           fmt::format(",block_size=\"{}\",num_gpu_blocks=\"{}\"", s.block_size, s.kv_blocks_total));
}

}  // namespace

std::optional<MetricsCompat> parse_metrics_compat(std::string_view name) {
  if (name == "none") return MetricsCompat::None;
  if (name == "vllm") return MetricsCompat::Vllm;
  return std::nullopt;
}

std::string prometheus_label_value(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string prometheus_number(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 1e15) return fmt::format("{:.1f}", value);
  return fmt::format("{}", value);
}

std::string render_prometheus(const std::string& model_name, const EngineSnapshot& s, const EngineMetrics* metrics,
                              const MorphSummary* morph, const PrometheusOptions& options) {
  const EngineMetrics empty;  // zeros while loading
  const EngineMetrics& m = metrics ? *metrics : empty;
  Writer w(model_name, "morphserve:");
  w.gauge("num_requests_running", static_cast<double>(s.num_running), "Number of requests in model execution batches.");
  w.gauge("num_requests_waiting", static_cast<double>(s.num_waiting), "Number of requests waiting to be processed.");
  const double usage =
      s.kv_blocks_total > 0 ? static_cast<double>(s.kv_blocks_used) / static_cast<double>(s.kv_blocks_total) : 0.0;
  w.gauge("kv_cache_usage_perc", usage, "KV-cache usage. 1 means 100 percent usage.");
  w.gauge("kv_blocks_total", static_cast<double>(s.kv_blocks_total), "KV-cache blocks in the pool.");
  w.gauge("kv_blocks_used", static_cast<double>(s.kv_blocks_used), "KV-cache blocks held by requests.");
  // The engine's own counter and the snapshot's agree; the snapshot is the fresher while loading.
  w.counter("num_preemptions_total",
            static_cast<double>(std::max<uint64_t>(m.num_preemptions.load(), static_cast<uint64_t>(s.num_preemptions))),
            "Cumulative number of preemptions from the engine.");
  w.counter("prompt_tokens_total", static_cast<double>(m.prompt_tokens.load()), "Number of prefill tokens processed.");
  w.counter("generation_tokens_total", static_cast<double>(m.generation_tokens.load()),
            "Number of generation tokens processed.");
  w.header("request_success_total", "counter", "Count of successfully processed requests.");
  // vLLM's reasons: a request cancelled or dropped from the queue after --queue-timeout is an "abort".
  auto finished = [&](FinishReason r) { return static_cast<double>(m.request_success[static_cast<size_t>(r)].load()); };
  w.sample("request_success_total", finished(FinishReason::Stop), ",finished_reason=\"stop\"");
  w.sample("request_success_total", finished(FinishReason::Length), ",finished_reason=\"length\"");
  w.sample("request_success_total", finished(FinishReason::Cancelled) + finished(FinishReason::QueueTimeout),
           ",finished_reason=\"abort\"");
  w.sample("request_success_total", finished(FinishReason::Error), ",finished_reason=\"error\"");
  w.counter("num_queue_timeouts_total", finished(FinishReason::QueueTimeout),
            "Requests dropped after waiting longer than --queue-timeout to be scheduled.");
  w.histogram("time_to_first_token_seconds", m.time_to_first_token_seconds.snapshot(),
              "Histogram of time to first token in seconds.");
  w.histogram("inter_token_latency_seconds", m.inter_token_latency_seconds.snapshot(),
              "Histogram of inter-token latency in seconds.");
  w.histogram("e2e_request_latency_seconds", m.e2e_request_latency_seconds.snapshot(),
              "Histogram of end to end request latency in seconds.");
  w.histogram("request_queue_time_seconds", m.request_queue_time_seconds.snapshot(),
              "Histogram of time spent in WAITING phase for request.");

  MorphSummary no_morph;
  no_morph.swap_seconds.upper_bounds = swap_seconds_buckets();
  no_morph.swap_seconds.cumulative_counts.assign(no_morph.swap_seconds.upper_bounds.size(), 0);
  const MorphSummary& mo = morph ? *morph : no_morph;
  w.header("layers_quantized", "gauge", "Decoder layers running on a quantized replica, by precision.");
  w.sample("layers_quantized", mo.layers_w8, ",precision=\"w8\"");
  w.sample("layers_quantized", mo.layers_w4, ",precision=\"w4\"");
  w.header("layer_swaps_total", "counter", "Finished layer swaps: down to a quantized replica, up towards full precision.");
  w.sample("layer_swaps_total", static_cast<double>(mo.swaps_down), ",direction=\"down\"");
  w.sample("layer_swaps_total", static_cast<double>(mo.swaps_up), ",direction=\"up\"");
  w.gauge("layer_swaps_in_flight", mo.swaps_in_flight, "Layer swaps started and not finished.");
  w.counter("layer_swaps_failed_total", static_cast<double>(mo.swaps_failed),
            "Layer swaps abandoned because reading the model or replica file failed; the layer kept its precision.");
  w.gauge("morph_suspended", mo.suspended ? 1 : 0,
          "1 once morphing has stopped because a model or replica file changed (the reason is in /morph).");
  w.histogram("swap_seconds", mo.swap_seconds, "Histogram of layer swap durations (start to final flip) in seconds.");
  w.gauge("precision_degradation", mo.precision_degradation,
          "Share of decoder-layer weight bytes (at full precision) running below full precision: 0 full, 1 all on replicas.");
  std::string out = w.take();
  if (options.compat == MetricsCompat::Vllm) {
    Writer vllm(model_name, "vllm:");
    write_vllm_compat(vllm, s, usage, options.now_unix_seconds);
    out += vllm.take();
  }
  return out;
}

}  // namespace morphserve::server
