#pragma once
// A Hugging Face config.json for the architectures morphserve serves (LlamaForCausalLM,
// MistralForCausalLM, Qwen2ForCausalLM), read into plain fields with transformers' defaults and checked: every wrong
// type, missing required key or impossible value ends in one ModelFileError sentence naming the key.
// Turning it into a LlamaConfig is the model loader's business.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace morphserve {

struct HfRopeScaling {
  std::string rope_type;  // "linear", "dynamic", "llama3", "yarn", ... (older configs call the key "type")
  double factor = 1.0;
  std::optional<double> low_freq_factor;                    // llama3
  std::optional<double> high_freq_factor;                   // llama3
  std::optional<int64_t> original_max_position_embeddings;  // llama3, yarn, longrope

  bool operator==(const HfRopeScaling&) const = default;
};

struct HfConfig {
  std::string architecture;  // architectures[0]
  std::string model_type;    // "llama" or "qwen2"
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // num_attention_heads when the key is absent
  std::optional<int64_t> head_dim;  // absent: hidden_size / num_attention_heads (see resolved_head_dim)
  double rms_norm_eps = 0;
  double rope_theta = 10000.0;
  std::optional<HfRopeScaling> rope_scaling;  // none for null, absent or rope_type "default"
  int64_t max_position_embeddings = 0;
  int64_t vocab_size = 0;
  bool tie_word_embeddings = false;
  std::string torch_dtype;             // "bfloat16", "float16", "float32", ...; empty when absent
  std::vector<int64_t> bos_token_id;   // empty when absent or null; a list in some chat models
  std::vector<int64_t> eos_token_id;
  std::string hidden_act = "silu";
  bool attention_bias = false;  // Llama's key: q, k, v and o projections carry biases
  bool mlp_bias = false;        // Llama's key: gate, up and down projections carry biases
  // Which projections carry biases, whatever the architecture calls it: Qwen2 always has q, k and
  // v biases and never an o bias; Llama follows attention_bias for all four.
  bool qkv_bias = false;
  bool o_proj_bias = false;
  // Qwen2's sliding-window attention (only in effect when use_sliding_window is true); Mistral's
  // window, always in effect when set.
  bool use_sliding_window = false;
  std::optional<int64_t> sliding_window;
  std::optional<int64_t> max_window_layers;
  std::string quantization_method;  // quantization_config.quant_method ("awq", "gptq", ...); empty: none

  int64_t resolved_head_dim() const { return head_dim.value_or(hidden_size / num_attention_heads); }
  bool operator==(const HfConfig&) const = default;
};

// Parses config.json text; `name` (the file's path) leads every error message.
HfConfig parse_hf_config(std::string_view json_text, const std::string& name);
// Reads and parses the file (ModelFileError when it cannot be read).
HfConfig read_hf_config(const std::string& path);
// The config as config.json text, with the keys transformers writes for the architecture; what
// parse_hf_config reads back equals `config`.
std::string hf_config_to_json(const HfConfig& config);

}  // namespace morphserve
