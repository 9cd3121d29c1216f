#include "bench/server_sampler.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "bench/prometheus_text.h"

namespace morphserve::bench {

namespace {

// The series name without its engine prefix, and which engine's names it follows.
struct Series {
  std::string_view engine;  // "morphserve", "vllm", "llamacpp" or empty (unknown)
  std::string_view name;
};

Series split_series(std::string_view full) {
  for (std::string_view engine : {"morphserve", "vllm", "llamacpp"}) {
    if (full.size() > engine.size() + 1 && full.substr(0, engine.size()) == engine && full[engine.size()] == ':') {
      return {engine, full.substr(engine.size() + 1)};
    }
  }
  return {};
}

// The neutral key a sample feeds, or empty when it is not plotted.
std::string key_of(const PrometheusSample& s) {
  const Series series = split_series(s.name);
  if (series.engine.empty()) return {};
  const std::string_view n = series.name;
  if (series.engine == "llamacpp") {
    // llama-server's own names (it serves /metrics with --metrics).
    if (n == "requests_processing") return "num_requests_running";
    if (n == "requests_deferred") return "num_requests_waiting";
    if (n == "kv_cache_usage_ratio") return "kv_cache_usage_perc";
    return {};
  }
  if (n == "num_requests_running" || n == "num_requests_waiting" || n == "kv_cache_usage_perc" ||
      n == "kv_blocks_total" || n == "kv_blocks_used") {
    return std::string(n);
  }
  if (n == "gpu_cache_usage_perc") return "kv_cache_usage_perc";  // vLLM before 0.10
  const auto label = [&](const char* key) {
    const auto it = s.labels.find(key);
    return it == s.labels.end() ? std::string() : it->second;
  };
  if (n == "layers_quantized") {
    const std::string precision = label("precision");
    return precision.empty() ? std::string() : "layers_quantized_" + precision;
  }
  if (n == "layer_swaps_total") {
    const std::string direction = label("direction");
    return direction.empty() ? std::string() : "layer_swaps_" + direction;
  }
  return {};
}

bool quantized_type(const std::string& dtype) {
  return !dtype.empty() && dtype != "f32" && dtype != "f16" && dtype != "bf16" && dtype != "full_precision";
}

}  // namespace

std::map<std::string, double> server_values_from_metrics(std::string_view prometheus_text) {
  std::map<std::string, double> sums;
  std::map<std::string, int> counts;
  for (const PrometheusSample& s : parse_prometheus_text(prometheus_text)) {
    if (!std::isfinite(s.value)) continue;
    const std::string key = key_of(s);
    if (key.empty()) continue;
    sums[key] += s.value;
    ++counts[key];
  }
  if (const auto it = sums.find("kv_cache_usage_perc"); it != sums.end()) it->second /= counts["kv_cache_usage_perc"];
  return sums;
}

namespace {

// The layer's precision when it differs from its full precision, else nullopt; `precision` gets
// the layer's precision, or stays empty for an entry without one.
std::optional<std::string> quantized_precision(const nlohmann::json& layer, std::string& precision) {
  precision.clear();
  if (!layer.is_object() || !layer.contains("precision") || !layer["precision"].is_string()) return std::nullopt;
  precision = layer["precision"].get<std::string>();
  const auto full = layer.find("full_precision");
  const bool quantized = full != layer.end() && full->is_string() ? precision != full->get<std::string>()
                                                                   : quantized_type(precision);
  return quantized ? std::optional<std::string>(precision) : std::nullopt;
}

}  // namespace

std::map<std::string, double> server_values_from_morph(const nlohmann::json& status) {
  std::map<std::string, double> out;
  if (!status.is_object()) return out;
  if (const auto layers = status.find("layers"); layers != status.end() && layers->is_array()) {
    double quantized = 0;
    std::string precision;
    for (const nlohmann::json& layer : *layers) quantized += quantized_precision(layer, precision) ? 1 : 0;
    out["morph_layers_quantized"] = quantized;
  }
  if (const auto swaps = status.find("swaps"); swaps != status.end() && swaps->is_object()) {
    if (const auto f = swaps->find("in_flight"); f != swaps->end() && f->is_number()) {
      out["morph_swaps_in_flight"] = f->get<double>();
    }
  }
  return out;
}

std::string precision_map_from_morph(const nlohmann::json& status) {
  if (!status.is_object() || !status.contains("layers") || !status["layers"].is_array()) return {};
  const nlohmann::json& layers = status["layers"];
  std::vector<std::optional<std::string>> quantized;  // by position in the list
  std::set<std::string> types;
  std::string precision;
  for (const nlohmann::json& layer : layers) {
    quantized.push_back(quantized_precision(layer, precision));
    if (precision.empty()) return {};
    types.insert(precision);
  }
  if (quantized.empty()) return {};
  const bool any = std::any_of(quantized.begin(), quantized.end(), [](const auto& q) { return q.has_value(); });
  if (!any && types.size() == 1) return "all:" + *types.begin();
  std::string out;
  // Layers are listed by their "layer" number when given, else by position.
  const auto number = [&](size_t i) {
    const nlohmann::json& l = layers[i];
    return l.contains("layer") && l["layer"].is_number_integer() ? l["layer"].get<int64_t>() : static_cast<int64_t>(i);
  };
  for (size_t i = 0; i < quantized.size();) {
    if (!quantized[i]) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j + 1 < quantized.size() && quantized[j + 1] == quantized[i] && number(j + 1) == number(j) + 1) ++j;
    if (!out.empty()) out += ',';
    out += i == j ? fmt::format("{}:{}", number(i), *quantized[i])
                  : fmt::format("{}-{}:{}", number(i), number(j), *quantized[i]);
    i = j + 1;
  }
  if (out.empty()) {
    // No layer quantized, but full precision differs between layers: name every layer.
    for (size_t i = 0; i < layers.size(); ++i) {
      if (!out.empty()) out += ',';
      out += fmt::format("{}:{}", number(i), layers[i]["precision"].get<std::string>());
    }
  }
  return out;
}

ServerSampler::ServerSampler(ServerUrl url, std::string api_key, double interval_seconds, Clock::time_point origin)
    : url_(std::move(url)),
      api_key_(std::move(api_key)),
      interval_seconds_(std::max(interval_seconds, 0.01)),  // a zero interval would poll in a tight loop
      origin_(origin) {}

ServerSampler::~ServerSampler() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ServerSampler::start() { thread_ = std::thread([this] { loop(); }); }

std::vector<ServerSample> ServerSampler::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  ServerSample last = sample_now();
  std::lock_guard lock(mutex_);
  if (!last.values.empty() || !last.precision_map.empty()) samples_.push_back(std::move(last));
  return std::move(samples_);
}

ServerSample ServerSampler::sample_now() {
  ServerSample sample;
  sample.seconds = std::chrono::duration<double>(Clock::now() - origin_).count();
  // A poll must not hold the next one back for long: the wait for bytes is bounded by the interval.
  const auto wait = std::chrono::milliseconds(static_cast<int64_t>(std::max(1.0, 2 * interval_seconds_) * 1000));
  auto client = make_client(url_, wait, api_key_);
  client->set_connection_timeout(wait);
  const JsonReply metrics = get_json(*client, url_, "/metrics");
  if (metrics.status == 200) sample.values = server_values_from_metrics(metrics.body);
  if (morph_available_) {
    const JsonReply morph = get_json(*client, url_, "/morph");
    const auto doc = morph.status == 200 ? morph.json() : std::nullopt;
    if (doc && doc->is_object()) {
      sample.values.merge(server_values_from_morph(*doc));
      sample.precision_map = precision_map_from_morph(*doc);
    } else if (morph.status != 0) {
      morph_available_ = false;  // answered, but not with a status: this server has no /morph
    }
  }
  return sample;
}

void ServerSampler::loop() {
  const auto interval = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(interval_seconds_));
  auto next = Clock::now();
  for (;;) {
    ServerSample sample = sample_now();
    std::unique_lock lock(mutex_);
    if (!sample.values.empty() || !sample.precision_map.empty()) samples_.push_back(std::move(sample));
    next += interval;
    // A slow poll skips the ticks it overran instead of firing them back to back.
    while (next < Clock::now()) next += interval;
    if (wake_.wait_until(lock, next, [&] { return stopping_; })) return;
  }
}

}  // namespace morphserve::bench
