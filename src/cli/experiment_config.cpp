#include "cli/experiment_config.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace morphserve::cli {

namespace {

using nlohmann::json;

class Reader {
 public:
  Reader(const json& object, std::string where, std::string file) : object_(object), where_(std::move(where)), file_(std::move(file)) {
    if (!object_.is_object()) fail<InvalidArgument>("{}: {} must be a JSON object", file_, where_);
  }
  // Refuses keys nobody reads: a misspelt field must not be silently ignored.
  void only(std::initializer_list<const char*> keys) const {
    const std::set<std::string> known(keys.begin(), keys.end());
    for (const auto& [key, value] : object_.items()) {
      if (!known.count(key)) fail<InvalidArgument>("{}: unknown field '{}' in {}", file_, key, where_);
    }
  }
  template <typename T>
  std::optional<T> get(const char* key) const {
    const auto it = object_.find(key);
    if (it == object_.end()) return std::nullopt;
    try {
      return it->get<T>();
    } catch (const json::exception&) {
      fail<InvalidArgument>("{}: {}.{} has the wrong type", file_, where_, key);
    }
  }
  template <typename T>
  T require(const char* key) const {
    auto value = get<T>(key);
    if (!value) fail<InvalidArgument>("{}: {} needs '{}'", file_, where_, key);
    return *value;
  }
  const json& at(const char* key) const { return object_.at(key); }
  bool has(const char* key) const { return object_.contains(key); }

 private:
  const json& object_;
  std::string where_;
  std::string file_;
};

std::string relative_to(const std::filesystem::path& folder, const std::string& path) {
  if (path.empty() || std::filesystem::path(path).is_absolute()) return path;
  return (folder / path).lexically_normal().string();
}

}  // namespace

ExperimentConfig load_experiment_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail<InvalidArgument>("cannot read experiment file {}", path);
  std::stringstream text;
  text << in.rdbuf();
  json root;
  try {
    root = json::parse(text.str());
  } catch (const json::exception& e) {
    fail<InvalidArgument>("{} is not valid JSON: {}", path, e.what());
  }
  const auto folder = std::filesystem::path(path).parent_path();
  ExperimentConfig c;
  c.path = path;
  const Reader top(root, "the experiment", path);
  top.only({"name", "description", "model", "serve", "workload", "bench", "arms", "quality"});
  c.name = top.require<std::string>("name");
  c.description = top.get<std::string>("description").value_or("");
  c.model = top.require<std::string>("model");
  if (!c.model.starts_with("dummy:")) c.model = relative_to(folder, c.model);
  c.serve_args = top.get<std::vector<std::string>>("serve").value_or(std::vector<std::string>{});

  const Reader w(top.at("workload"), "workload", path);
  w.only({"trace", "synthetic", "window", "time_scale", "rate_scale", "prompt_scale", "output_scale", "max_prompt",
          "max_output", "max_requests", "seed"});
  c.workload.trace = relative_to(folder, w.get<std::string>("trace").value_or(""));
  c.workload.synthetic = w.get<std::string>("synthetic").value_or("");
  if (c.workload.trace.empty() == c.workload.synthetic.empty()) {
    fail<InvalidArgument>("{}: the workload needs exactly one of 'trace' and 'synthetic'", path);
  }
  c.workload.window = w.get<std::string>("window").value_or("");
  c.workload.time_scale = w.get<double>("time_scale").value_or(1.0);
  c.workload.rate_scale = w.get<double>("rate_scale").value_or(1.0);
  c.workload.prompt_scale = w.get<double>("prompt_scale").value_or(1.0);
  c.workload.output_scale = w.get<double>("output_scale").value_or(1.0);
  c.workload.max_prompt = w.get<int64_t>("max_prompt").value_or(0);
  c.workload.max_output = w.get<int64_t>("max_output").value_or(0);
  c.workload.max_requests = w.get<int64_t>("max_requests").value_or(0);
  c.workload.seed = w.get<uint64_t>("seed").value_or(0);

  if (top.has("bench")) {
    const Reader b(top.at("bench"), "bench", path);
    b.only({"slo_ttft", "slo_tpot", "prompt_text", "vocab_size", "request_timeout"});
    c.vocab_size = b.get<int64_t>("vocab_size").value_or(32000);
    c.slo_ttft = b.get<std::string>("slo_ttft").value_or("0");
    c.slo_tpot = b.get<std::string>("slo_tpot").value_or("0");
    c.prompt_text = relative_to(folder, b.get<std::string>("prompt_text").value_or(""));
    c.request_timeout = b.get<std::string>("request_timeout").value_or("600s");
  }

  if (!root.contains("arms") || !root["arms"].is_array() || root["arms"].empty()) {
    fail<InvalidArgument>("{}: 'arms' must be a non-empty array", path);
  }
  std::set<std::string> names;
  for (const json& arm_json : root["arms"]) {
    const Reader a(arm_json, "an arm", path);
    a.only({"name", "serve"});
    ExperimentArm arm{a.require<std::string>("name"), a.get<std::vector<std::string>>("serve").value_or(std::vector<std::string>{})};
    if (arm.name.empty() || arm.name.find_first_of("/\\ ") != std::string::npos) {
      fail<InvalidArgument>("{}: arm name '{}' must be non-empty, without spaces or slashes (it names files)", path, arm.name);
    }
    if (!names.insert(arm.name).second) fail<InvalidArgument>("{}: two arms are named '{}'", path, arm.name);
    c.arms.push_back(std::move(arm));
  }

  if (top.has("quality")) {
    const Reader q(top.at("quality"), "quality", path);
    q.only({"reference_arm", "text", "ppl_ctx", "ppl_tokens"});
    ExperimentQuality quality;
    quality.reference_arm = q.require<std::string>("reference_arm");
    quality.text = relative_to(folder, q.require<std::string>("text"));
    quality.ppl_ctx = q.get<int64_t>("ppl_ctx").value_or(512);
    quality.ppl_tokens = q.get<int64_t>("ppl_tokens").value_or(16384);
    if (!names.count(quality.reference_arm)) {
      fail<InvalidArgument>("{}: quality.reference_arm '{}' is not one of the arms", path, quality.reference_arm);
    }
    if (quality.ppl_ctx < 2 || quality.ppl_tokens < quality.ppl_ctx) {
      fail<InvalidArgument>("{}: quality needs ppl_ctx >= 2 and ppl_tokens >= ppl_ctx", path);
    }
    c.quality = quality;
  }
  return c;
}

}  // namespace morphserve::cli
