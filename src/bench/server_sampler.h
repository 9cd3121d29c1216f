#pragma once
// Samples the server's own view of the run: GET /metrics (Prometheus text) and, where it answers,
// GET /morph, once per interval on a thread of its own. The series it knows (morphserve:, vllm:
// and llamacpp: names) become ServerSample values under engine-neutral keys:
//   num_requests_running, num_requests_waiting, kv_cache_usage_perc (0..1), kv_blocks_total,
//   kv_blocks_used, layers_quantized_w8, layers_quantized_w4, layer_swaps_down, layer_swaps_up,
//   morph_layers_quantized (from /morph), morph_swaps_in_flight (from /morph);
// and, from /morph, ServerSample::precision_map (which layers run at which precision).
// A server without these endpoints or series just yields fewer keys; nothing here fails a run.
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/request_record.h"
#include "bench/server_url.h"

namespace morphserve::bench {

// The keys above from a /metrics text. Several series for one key (one per engine, say) are
// summed, except kv_cache_usage_perc, which is averaged; NaN and infinite values are left out.
std::map<std::string, double> server_values_from_metrics(std::string_view prometheus_text);

// The keys from a GET /morph document: layers whose "precision" differs from their
// "full_precision" (or, where a fixed-precision status gives no full precision, layers on a
// quantized type), and the swaps in flight.
std::map<std::string, double> server_values_from_morph(const nlohmann::json& status);

// Every layer's precision in a GET /morph document, in --precision syntax for
// ServerSample::precision_map: "all:f16" when no layer is quantized and all share one type, else
// the quantized layers as ranges ("0-1:q4_0,3:q8_0"; unlisted layers are at full precision). Empty
// when the document lists no layer precisions.
std::string precision_map_from_morph(const nlohmann::json& status);

class ServerSampler {
 public:
  using Clock = std::chrono::steady_clock;

  // Times of the samples are seconds from `origin` (the run's start).
  ServerSampler(ServerUrl url, std::string api_key, double interval_seconds, Clock::time_point origin);
  ~ServerSampler();
  ServerSampler(const ServerSampler&) = delete;
  ServerSampler& operator=(const ServerSampler&) = delete;

  // Starts polling: one sample at once, then one per interval.
  void start();
  // Takes a last sample (the state the run ended in), stops the thread and returns every sample.
  std::vector<ServerSample> stop();
  // One poll of /metrics and /morph, now.
  ServerSample sample_now();

 private:
  void loop();

  ServerUrl url_;
  std::string api_key_;
  double interval_seconds_;
  Clock::time_point origin_;
  bool morph_available_ = true;  // cleared after /morph fails once, so other servers are not asked again
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::vector<ServerSample> samples_;
};

}  // namespace morphserve::bench
