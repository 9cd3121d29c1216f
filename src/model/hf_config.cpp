// config.json reading. transformers fills absent keys from each architecture's defaults; the ones a
// published Llama or Qwen2 checkpoint always carries (the shape, eps, context) are required here,
// since a guessed width or epsilon would load and then compute nonsense.
#include "model/hf_config.h"

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/strict_json.h"

namespace morphserve {

namespace {

using nlohmann::json;

// Llama and Qwen2 configs nest at most an object or list in the top level; quantization_config and
// the like go a little deeper.
constexpr int kHfConfigMaxDepth = 16;
constexpr int64_t kHfMaxInt = std::numeric_limits<int32_t>::max();

struct HfArchitecture {
  std::string_view architecture;
  std::string_view model_type;
};
constexpr HfArchitecture kHfArchitectures[] = {
    {"LlamaForCausalLM", "llama"}, {"MistralForCausalLM", "mistral"}, {"Qwen2ForCausalLM", "qwen2"}};

std::string hf_kind(const json& v) {
  std::string text = v.dump();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "a list";
    case json::value_t::string: return "the string " + text;
    case json::value_t::boolean: return "the boolean " + text;
    default: return text;
  }
}

// Typed access to the keys of one JSON object, each failure one sentence naming the key.
class HfKeys {
 public:
  HfKeys(const std::string& file, const json& object, std::string prefix = "")
      : file_(file), object_(object), prefix_(std::move(prefix)) {}

  // The value, or nullptr when absent or null (transformers reads null as "use the default").
  const json* find(std::string_view key) const {
    const auto it = object_.find(key);
    return it == object_.end() || it->is_null() ? nullptr : &*it;
  }
  const json& need(std::string_view key, std::string_view wanted) const {
    if (const json* v = find(key)) return *v;
    if (object_.contains(key)) fail<ModelFileError>("{}: key {} is null, but it must be {}", file_, name(key), wanted);
    fail<ModelFileError>("{} has no key {}, which must be {}", file_, name(key), wanted);
  }

  std::optional<int64_t> int_opt(std::string_view key, int64_t min, int64_t max = kHfMaxInt) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    return checked_int(key, *v, min, max);
  }
  int64_t int_req(std::string_view key, int64_t min, int64_t max = kHfMaxInt) const {
    return checked_int(key, need(key, "an integer"), min, max);
  }
  std::optional<double> number_opt(std::string_view key) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    return checked_number(key, *v);
  }
  double positive_req(std::string_view key) const { return positive(key, checked_number(key, need(key, "a number"))); }
  std::optional<double> positive_opt(std::string_view key) const {
    const auto v = number_opt(key);
    if (v) positive(key, *v);
    return v;
  }
  bool bool_opt(std::string_view key, bool fallback) const {
    const json* v = find(key);
    if (!v) return fallback;
    if (!v->is_boolean()) wrong_type(key, "true or false", *v);
    return v->get<bool>();
  }
  std::optional<std::string> string_opt(std::string_view key) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    if (!v->is_string()) wrong_type(key, "a string", *v);
    return v->get<std::string>();
  }
  std::string string_req(std::string_view key) const {
    const json& v = need(key, "a string");
    if (!v.is_string()) wrong_type(key, "a string", v);
    return v.get<std::string>();
  }
  // A token id or a list of them (eos_token_id of chat models); empty when absent.
  std::vector<int64_t> ids_opt(std::string_view key, int64_t vocab_size) const {
    const json* v = find(key);
    if (!v) return {};
    std::vector<int64_t> ids;
    if (v->is_array()) {
      for (const json& id : *v) ids.push_back(checked_id(key, id, vocab_size));
    } else {
      ids.push_back(checked_id(key, *v, vocab_size));
    }
    return ids;
  }

  std::string name(std::string_view key) const { return fmt::format("\"{}{}\"", prefix_, key); }
  [[noreturn]] void wrong_type(std::string_view key, std::string_view wanted, const json& v) const {
    fail<ModelFileError>("{}: key {} must be {}, but it is {}", file_, name(key), wanted, hf_kind(v));
  }

 private:
  int64_t checked_int(std::string_view key, const json& v, int64_t min, int64_t max) const {
    if (!v.is_number_integer()) wrong_type(key, "an integer", v);
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(max)) {
      fail<ModelFileError>("{}: key {} is {}, but it must be at most {}", file_, name(key), v.dump(), max);
    }
    const auto value = v.get<int64_t>();
    if (value < min || value > max) {
      fail<ModelFileError>("{}: key {} is {}, but it must be {} {}", file_, name(key), value,
                           value < min ? "at least" : "at most", value < min ? min : max);
    }
    return value;
  }
  double checked_number(std::string_view key, const json& v) const {
    if (!v.is_number()) wrong_type(key, "a number", v);
    const auto value = v.get<double>();
    if (!std::isfinite(value)) fail<ModelFileError>("{}: key {} is not a finite number", file_, name(key));
    return value;
  }
  double positive(std::string_view key, double value) const {
    if (value <= 0) fail<ModelFileError>("{}: key {} is {}, but it must be positive", file_, name(key), value);
    return value;
  }
  int64_t checked_id(std::string_view key, const json& id, int64_t vocab_size) const {
    if (!id.is_number_integer()) wrong_type(key, "a token id or a list of token ids", id);
    const auto value = id.is_number_unsigned() && id.get<uint64_t>() > static_cast<uint64_t>(kHfMaxInt)
                           ? kHfMaxInt + 1 : id.get<int64_t>();
    if (value < 0 || value >= vocab_size) {
      fail<ModelFileError>("{}: key {} holds token id {}, outside the vocabulary of {} tokens", file_, name(key),
                           id.dump(), vocab_size);
    }
    return value;
  }

  const std::string& file_;
  const json& object_;
  std::string prefix_;
};

// rope_scaling, or transformers 5's rope_parameters (which also carries rope_theta).
std::optional<HfRopeScaling> hf_rope_scaling(const std::string& file, const HfKeys& top, std::string_view key) {
  const json* value = top.find(key);
  if (!value) return std::nullopt;
  if (!value->is_object()) top.wrong_type(key, "an object or null", *value);
  const HfKeys keys(file, *value, std::string(key) + ".");
  const auto rope_type = keys.string_opt("rope_type");
  const auto legacy_type = keys.string_opt("type");
  if (rope_type && legacy_type && *rope_type != *legacy_type) {
    fail<ModelFileError>("{}: {} says rope_type \"{}\" but type \"{}\"", file, top.name(key), *rope_type,
                         *legacy_type);
  }
  if (!rope_type && !legacy_type) fail<ModelFileError>("{}: {} has no rope_type", file, top.name(key));
  HfRopeScaling s;
  s.rope_type = rope_type ? *rope_type : *legacy_type;
  if (s.rope_type == "default") return std::nullopt;
  const bool factor_required = s.rope_type == "linear" || s.rope_type == "dynamic" || s.rope_type == "llama3" ||
                               s.rope_type == "yarn";
  s.factor = factor_required ? keys.positive_req("factor") : keys.positive_opt("factor").value_or(1.0);
  s.original_max_position_embeddings = keys.int_opt("original_max_position_embeddings", 1);
  if (s.rope_type == "llama3") {
    s.low_freq_factor = keys.positive_req("low_freq_factor");
    s.high_freq_factor = keys.positive_req("high_freq_factor");
    s.original_max_position_embeddings = keys.int_req("original_max_position_embeddings", 1);
    // The llama3 formula interpolates between the two wavelength bounds they give.
    if (*s.high_freq_factor <= *s.low_freq_factor) {
      fail<ModelFileError>("{}: {}high_freq_factor ({}) must exceed low_freq_factor ({})", file, top.name(key),
                           *s.high_freq_factor, *s.low_freq_factor);
    }
  } else {
    s.low_freq_factor = keys.positive_opt("low_freq_factor");
    s.high_freq_factor = keys.positive_opt("high_freq_factor");
  }
  return s;
}

}  // namespace

HfConfig parse_hf_config(std::string_view json_text, const std::string& name) {
  const json root = parse_strict_json(json_text, name, kHfConfigMaxDepth);
  if (!root.is_object()) fail<ModelFileError>("{} is not a JSON object, so it is not a config.json", name);
  const HfKeys keys(name, root);
  HfConfig c;

  const json& architectures = keys.need("architectures", "a list naming the model class");
  if (!architectures.is_array() || architectures.empty() || !architectures[0].is_string()) {
    keys.wrong_type("architectures", "a list naming the model class", architectures);
  }
  c.architecture = architectures[0].get<std::string>();
  c.model_type = keys.string_req("model_type");
  const HfArchitecture* known = nullptr;
  for (const HfArchitecture& a : kHfArchitectures) {
    if (a.architecture == c.architecture) known = &a;
  }
  if (!known) {
    fail<ModelFileError>("{} describes a {}, which morphserve does not serve (supported: LlamaForCausalLM, "
                         "MistralForCausalLM, Qwen2ForCausalLM)", name, c.architecture);
  }
  if (known->model_type != c.model_type) {
    fail<ModelFileError>("{}: key \"model_type\" is \"{}\", but a {} has model_type \"{}\"", name, c.model_type,
                         c.architecture, known->model_type);
  }
  const bool qwen2 = c.model_type == "qwen2";

  c.hidden_size = keys.int_req("hidden_size", 1);
  c.intermediate_size = keys.int_req("intermediate_size", 1);
  c.num_hidden_layers = keys.int_req("num_hidden_layers", 1);
  c.num_attention_heads = keys.int_req("num_attention_heads", 1);
  c.num_key_value_heads = keys.int_opt("num_key_value_heads", 1).value_or(c.num_attention_heads);
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    fail<ModelFileError>("{}: num_attention_heads ({}) must be a multiple of num_key_value_heads ({})", name,
                         c.num_attention_heads, c.num_key_value_heads);
  }
  c.head_dim = keys.int_opt("head_dim", 1);
  if (!c.head_dim && c.hidden_size % c.num_attention_heads != 0) {
    fail<ModelFileError>("{} has no head_dim and hidden_size ({}) is not a multiple of num_attention_heads ({})",
                         name, c.hidden_size, c.num_attention_heads);
  }
  // Rotary embeddings turn pairs of a head's dimensions; the attention width must fit the ints
  // the kernels index with.
  if (c.resolved_head_dim() % 2 != 0) {
    fail<ModelFileError>("{}: the head dimension {} must be even for rotary embeddings", name, c.resolved_head_dim());
  }
  if (c.num_attention_heads * c.resolved_head_dim() > kHfMaxInt) {
    fail<ModelFileError>("{}: num_attention_heads x head_dim must fit in 32 bits", name);
  }
  c.rms_norm_eps = keys.positive_req("rms_norm_eps");
  c.max_position_embeddings = keys.int_req("max_position_embeddings", 1);
  c.vocab_size = keys.int_req("vocab_size", 1);

  c.rope_scaling = hf_rope_scaling(name, keys, "rope_scaling");
  const json* rope_parameters = keys.find("rope_parameters");
  if (rope_parameters && rope_parameters->is_object() && !keys.find("rope_scaling")) {
    c.rope_scaling = hf_rope_scaling(name, keys, "rope_parameters");
  }
  if (const auto theta = keys.positive_opt("rope_theta")) {
    c.rope_theta = *theta;
  } else if (rope_parameters) {
    if (!rope_parameters->is_object()) keys.wrong_type("rope_parameters", "an object or null", *rope_parameters);
    c.rope_theta = HfKeys(name, *rope_parameters, "rope_parameters.").positive_opt("rope_theta").value_or(10000.0);
  }

  c.tie_word_embeddings = keys.bool_opt("tie_word_embeddings", false);
  c.torch_dtype = keys.string_opt("torch_dtype").value_or(keys.string_opt("dtype").value_or(""));
  c.bos_token_id = keys.ids_opt("bos_token_id", c.vocab_size);
  c.eos_token_id = keys.ids_opt("eos_token_id", c.vocab_size);
  c.hidden_act = keys.string_opt("hidden_act").value_or("silu");
  c.mlp_bias = keys.bool_opt("mlp_bias", false);
  if (qwen2) {
    c.qkv_bias = true;
    c.o_proj_bias = false;
    c.use_sliding_window = keys.bool_opt("use_sliding_window", false);
    c.sliding_window = keys.int_opt("sliding_window", 1, std::numeric_limits<int64_t>::max());
    c.max_window_layers = keys.int_opt("max_window_layers", 0);
  } else if (c.model_type == "mistral") {
    // Mistral has no attention biases; its window (4096 in v0.1, null from v0.2) is always in effect.
    c.sliding_window = keys.int_opt("sliding_window", 1, std::numeric_limits<int64_t>::max());
  } else {
    c.attention_bias = keys.bool_opt("attention_bias", false);
    c.qkv_bias = c.o_proj_bias = c.attention_bias;
  }
  if (const json* q = keys.find("quantization_config")) {
    if (!q->is_object()) keys.wrong_type("quantization_config", "an object", *q);
    c.quantization_method = HfKeys(name, *q, "quantization_config.").string_opt("quant_method").value_or("unknown");
  }
  return c;
}

HfConfig read_hf_config(const std::string& path) {
  return parse_hf_config(read_model_text_file(path), path);
}

std::string hf_config_to_json(const HfConfig& c) {
  nlohmann::ordered_json j;
  j["architectures"] = {c.architecture};
  j["model_type"] = c.model_type;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_key_value_heads"] = c.num_key_value_heads;
  if (c.head_dim) j["head_dim"] = *c.head_dim;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_theta"] = c.rope_theta;
  j["rope_scaling"] = nullptr;
  if (const auto& s = c.rope_scaling) {
    nlohmann::ordered_json r = {{"rope_type", s->rope_type}, {"factor", s->factor}};
    if (s->low_freq_factor) r["low_freq_factor"] = *s->low_freq_factor;
    if (s->high_freq_factor) r["high_freq_factor"] = *s->high_freq_factor;
    if (s->original_max_position_embeddings) r["original_max_position_embeddings"] = *s->original_max_position_embeddings;
    j["rope_scaling"] = r;
  }
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["vocab_size"] = c.vocab_size;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  if (!c.torch_dtype.empty()) j["torch_dtype"] = c.torch_dtype;
  auto ids = [](const std::vector<int64_t>& v) {
    return v.empty() ? nlohmann::ordered_json(nullptr)
                     : v.size() == 1 ? nlohmann::ordered_json(v[0]) : nlohmann::ordered_json(v);
  };
  j["bos_token_id"] = ids(c.bos_token_id);
  j["eos_token_id"] = ids(c.eos_token_id);
  j["hidden_act"] = c.hidden_act;
  j["mlp_bias"] = c.mlp_bias;
  if (c.model_type == "qwen2") {
    j["use_sliding_window"] = c.use_sliding_window;
    j["sliding_window"] = c.sliding_window ? nlohmann::ordered_json(*c.sliding_window) : nullptr;
    if (c.max_window_layers) j["max_window_layers"] = *c.max_window_layers;
  } else if (c.model_type == "mistral") {
    j["sliding_window"] = c.sliding_window ? nlohmann::ordered_json(*c.sliding_window) : nullptr;
  } else {
    j["attention_bias"] = c.attention_bias;
  }
  if (!c.quantization_method.empty()) j["quantization_config"] = {{"quant_method", c.quantization_method}};
  return j.dump(2) + "\n";
}

}  // namespace morphserve
