#include "bench/report.h"

#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "core/error.h"

namespace morphserve::bench {
namespace {

using nlohmann::json;

// JSON has no NaN; null says "not measured" and reads back as NaN.
json number(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json percentiles_json(const Percentiles& p) {
  return {{"count", p.count}, {"mean", number(p.mean)}, {"p50", number(p.p50)}, {"p90", number(p.p90)},
          {"p95", number(p.p95)}, {"p99", number(p.p99)}, {"max", number(p.max)}};
}

// Field access that names the path of anything missing or mistyped, so a hand-edited or
// truncated run file gets an error a user can act on rather than nlohmann's terse one.
const json& field(const json& object, const char* key, const std::string& where) {
  if (!object.is_object()) fail<InvalidArgument>("run JSON: {} is not an object", where);
  const auto it = object.find(key);
  if (it == object.end()) fail<InvalidArgument>("run JSON: {}.{} is missing", where, key);
  return *it;
}

double get_double(const json& object, const char* key, const std::string& where) {
  const json& v = field(object, key, where);
  if (v.is_null()) return std::numeric_limits<double>::quiet_NaN();
  if (!v.is_number()) fail<InvalidArgument>("run JSON: {}.{} must be a number, found {}", where, key, v.type_name());
  return v.get<double>();
}

int64_t get_int(const json& object, const char* key, const std::string& where) {
  const json& v = field(object, key, where);
  if (!v.is_number_integer()) fail<InvalidArgument>("run JSON: {}.{} must be a whole number, found {}", where, key, v.dump());
  return v.get<int64_t>();
}

std::string get_string(const json& object, const char* key, const std::string& where) {
  const json& v = field(object, key, where);
  if (!v.is_string()) fail<InvalidArgument>("run JSON: {}.{} must be a string, found {}", where, key, v.type_name());
  return v.get<std::string>();
}

const json& get_array(const json& object, const char* key, const std::string& where) {
  const json& v = field(object, key, where);
  if (!v.is_array()) fail<InvalidArgument>("run JSON: {}.{} must be an array, found {}", where, key, v.type_name());
  return v;
}

json record_json(const RequestRecord& r) {
  return {{"index", r.index},
          {"scheduled_seconds", r.scheduled_seconds},
          {"send_seconds", r.send_seconds},
          {"first_token_seconds", r.first_token_seconds ? json(*r.first_token_seconds) : json(nullptr)},
          {"token_seconds", r.token_seconds},
          {"end_seconds", r.end_seconds},
          {"prompt_tokens", r.prompt_tokens},
          {"max_tokens", r.max_tokens},
          {"output_tokens", r.output_tokens},
          {"http_status", r.http_status},
          {"error", r.error}};
}

RequestRecord record_from_json(const json& j, const std::string& where) {
  RequestRecord r;
  const int64_t index = get_int(j, "index", where);
  if (index < 0) fail<InvalidArgument>("run JSON: {}.index is negative", where);
  r.index = static_cast<size_t>(index);
  r.scheduled_seconds = get_double(j, "scheduled_seconds", where);
  r.send_seconds = get_double(j, "send_seconds", where);
  const json& first = field(j, "first_token_seconds", where);
  if (!first.is_null()) r.first_token_seconds = get_double(j, "first_token_seconds", where);
  const json& tokens = get_array(j, "token_seconds", where);
  r.token_seconds.reserve(tokens.size());
  for (const json& t : tokens) {
    if (!t.is_number()) fail<InvalidArgument>("run JSON: {}.token_seconds holds a {}", where, t.type_name());
    r.token_seconds.push_back(t.get<double>());
  }
  r.end_seconds = get_double(j, "end_seconds", where);
  r.prompt_tokens = get_int(j, "prompt_tokens", where);
  r.max_tokens = get_int(j, "max_tokens", where);
  r.output_tokens = get_int(j, "output_tokens", where);
  r.http_status = static_cast<int>(get_int(j, "http_status", where));
  r.error = get_string(j, "error", where);
  return r;
}

}  // namespace

json summary_to_json(const BenchSummary& s) {
  return {{"requests", s.requests},
          {"completed", s.completed},
          {"errors", s.errors},
          {"ttft_seconds", percentiles_json(s.ttft)},
          {"tpot_seconds", percentiles_json(s.tpot)},
          {"itl_seconds", percentiles_json(s.itl)},
          {"e2e_seconds", percentiles_json(s.e2e)},
          {"slo_violation_rate", number(s.slo_violation_rate)},
          {"goodput_rps", number(s.goodput_rps)},
          {"throughput_rps", number(s.throughput_rps)},
          {"output_tokens_per_second", number(s.output_tokens_per_second)},
          {"input_tokens_per_second", number(s.input_tokens_per_second)},
          {"duration_seconds", number(s.duration_seconds)},
          {"mean_layers_quantized", number(s.mean_layers_quantized)},
          {"max_layers_quantized", number(s.max_layers_quantized)},
          {"max_kv_blocks_total", number(s.max_kv_blocks_total)},
          {"mean_kv_cache_usage", number(s.mean_kv_cache_usage)},
          {"layer_swaps_down", number(s.layer_swaps_down)},
          {"layer_swaps_up", number(s.layer_swaps_up)}};
}

json to_json(const BenchRun& run, const BenchSummary& summary, const Slo& slo) {
  json requests = json::array();
  for (const WorkloadRequest& r : run.workload.requests)
    requests.push_back({{"arrival_seconds", r.arrival_seconds}, {"prompt_tokens", r.prompt_tokens}, {"output_tokens", r.output_tokens}});
  json records = json::array();
  for (const RequestRecord& r : run.records) records.push_back(record_json(r));
  json samples = json::array();
  for (const ServerSample& s : run.samples) {
    json values = json::object();
    for (const auto& [key, value] : s.values) values[key] = number(value);
    json sample = {{"seconds", s.seconds}, {"values", std::move(values)}};
    if (!s.precision_map.empty()) sample["precision_map"] = s.precision_map;
    samples.push_back(std::move(sample));
  }
  return {{"format", kRunFormat},
          {"version", kRunFormatVersion},
          {"url", run.url},
          {"model", run.model},
          {"duration_seconds", run.duration_seconds},
          {"settings", run.settings},
          {"slo", {{"ttft_seconds", slo.ttft}, {"tpot_seconds", slo.tpot}}},
          {"summary", summary_to_json(summary)},
          {"workload", {{"source", run.workload.source}, {"requests", std::move(requests)}}},
          {"records", std::move(records)},
          {"samples", std::move(samples)}};
}

BenchRun run_from_json(const json& j) {
  if (!j.is_object()) fail<InvalidArgument>("run JSON: expected an object, found {}", j.type_name());
  if (get_string(j, "format", "run") != kRunFormat)
    fail<InvalidArgument>("run JSON: format is '{}', not '{}'", j["format"].get<std::string>(), kRunFormat);
  if (get_int(j, "version", "run") > kRunFormatVersion)
    fail<InvalidArgument>("run JSON: version {} is newer than this build reads ({})", j["version"].dump(), kRunFormatVersion);
  BenchRun run;
  run.url = get_string(j, "url", "run");
  run.model = get_string(j, "model", "run");
  run.duration_seconds = get_double(j, "duration_seconds", "run");
  const json& settings = field(j, "settings", "run");
  if (!settings.is_object()) fail<InvalidArgument>("run JSON: run.settings must be an object");
  for (const auto& [key, value] : settings.items()) {
    if (!value.is_string()) fail<InvalidArgument>("run JSON: run.settings.{} must be a string", key);
    run.settings[key] = value.get<std::string>();
  }
  const json& workload = field(j, "workload", "run");
  run.workload.source = get_string(workload, "source", "run.workload");
  const json& requests = get_array(workload, "requests", "run.workload");
  for (size_t i = 0; i < requests.size(); ++i) {
    const std::string where = fmt::format("run.workload.requests[{}]", i);
    run.workload.requests.push_back({get_double(requests[i], "arrival_seconds", where),
                                     get_int(requests[i], "prompt_tokens", where),
                                     get_int(requests[i], "output_tokens", where)});
  }
  const json& records = get_array(j, "records", "run");
  run.records.reserve(records.size());
  for (size_t i = 0; i < records.size(); ++i) run.records.push_back(record_from_json(records[i], fmt::format("run.records[{}]", i)));
  const json& samples = get_array(j, "samples", "run");
  for (size_t i = 0; i < samples.size(); ++i) {
    const std::string where = fmt::format("run.samples[{}]", i);
    ServerSample sample;
    sample.seconds = get_double(samples[i], "seconds", where);
    const json& values = field(samples[i], "values", where);
    if (!values.is_object()) fail<InvalidArgument>("run JSON: {}.values must be an object", where);
    for (const auto& [key, value] : values.items()) sample.values[key] = get_double(values, key.c_str(), where + ".values");
    // Only servers with /morph report it, so its absence is normal.
    if (samples[i].contains("precision_map")) sample.precision_map = get_string(samples[i], "precision_map", where);
    run.samples.push_back(std::move(sample));
  }
  return run;
}

Slo slo_from_json(const json& j) {
  Slo slo;
  if (!j.is_object() || !j.contains("slo")) return slo;
  const json& s = j["slo"];
  if (s.contains("ttft_seconds")) slo.ttft = get_double(s, "ttft_seconds", "run.slo");
  if (s.contains("tpot_seconds")) slo.tpot = get_double(s, "tpot_seconds", "run.slo");
  return slo;
}

}  // namespace morphserve::bench
