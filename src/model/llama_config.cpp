#include "model/llama_config.h"

#include "core/error.h"
#include "model/gguf_file.h"

namespace morphserve {

void LlamaConfig::validate() const {
  auto require = [&](bool ok, const char* what) {
    if (!ok) fail<ModelFileError>("model '{}' has an invalid configuration: {}", name, what);
  };
  require(n_layers > 0, "block_count must be positive");
  require(n_embd > 0 && n_ff > 0, "embedding and feed-forward widths must be positive");
  require(n_heads > 0 && n_kv_heads > 0, "head counts must be positive");
  require(n_heads % n_kv_heads == 0, "head_count must be a multiple of head_count_kv");
  require(head_dim > 0 && head_dim % 2 == 0, "head dimension must be positive and even");
  // q_dim() and kv_dim() are ints that loading and every forward pass use; kv_dim <= q_dim.
  require(static_cast<int64_t>(n_heads) * head_dim <= INT32_MAX,
          "head_count times the head dimension must fit in 32 bits");
  require(rope_dims > 0 && rope_dims <= head_dim && rope_dims % 2 == 0,
          "rope dimension count must be even and at most the head dimension");
  require(rope_freq_base > 0 && rope_freq_scale > 0, "rope frequency base and scale must be positive");
  require(rms_eps > 0, "rms epsilon must be positive");
  require(context_length > 0, "context length must be positive");
  require(vocab_size > 0, "vocabulary must not be empty");
}

std::string_view architecture_name(Architecture arch) {
  switch (arch) {
    case Architecture::Llama: return "llama";
    case Architecture::Qwen2: return "qwen2";
  }
  return "unknown";
}

LlamaConfig llama_config_from_gguf(const GgufFile& file) {
  const std::string arch_name = file.get_string_opt("general.architecture").value_or("");
  LlamaConfig c;
  if (arch_name == "llama") {
    c.arch = Architecture::Llama;
  } else if (arch_name == "qwen2") {
    // llama.cpp runs Qwen2 with NEOX-style RoPE; its GGUF keeps the checkpoint's Q/K layout.
    c.arch = Architecture::Qwen2;
    c.rope_neox = true;
  } else {
    fail<ModelFileError>("{} has architecture '{}'; morphserve serves 'llama' (Llama, Mistral) and 'qwen2' models",
                         file.path(), arch_name.empty() ? "(none)" : arch_name);
  }
  const std::string prefix = arch_name + ".";
  auto key = [&](std::string_view suffix) { return prefix + std::string(suffix); };
  auto get_int = [&](std::string_view suffix) {
    const std::string k = key(suffix);
    const uint64_t v = file.get_uint(k);
    if (v > static_cast<uint64_t>(INT32_MAX)) fail<ModelFileError>("{}: {} = {} is too large", file.path(), k, v);
    return static_cast<int>(v);
  };
  auto has = [&](std::string_view suffix) { return file.has(key(suffix)); };
  c.name = file.get_string_opt("general.name").value_or(arch_name);
  c.n_layers = get_int("block_count");
  c.n_embd = get_int("embedding_length");
  c.n_ff = get_int("feed_forward_length");
  c.n_heads = get_int("attention.head_count");
  c.n_kv_heads = has("attention.head_count_kv") ? get_int("attention.head_count_kv") : c.n_heads;
  if (c.n_heads <= 0) fail<ModelFileError>("{}: {} must be positive", file.path(), key("attention.head_count"));
  c.head_dim = has("attention.key_length") ? get_int("attention.key_length") : c.n_embd / c.n_heads;
  if (has("attention.value_length") && get_int("attention.value_length") != c.head_dim) {
    fail<ModelFileError>("{}: different key and value head sizes are not supported", file.path());
  }
  c.rope_dims = has("rope.dimension_count") ? get_int("rope.dimension_count") : c.head_dim;
  c.rope_freq_base = static_cast<float>(file.get_float_opt(key("rope.freq_base")).value_or(10000.0));
  c.rms_eps = static_cast<float>(file.get_float_opt(key("attention.layer_norm_rms_epsilon")).value_or(1e-5));
  c.context_length = static_cast<int64_t>(file.get_uint_opt(key("context_length")).value_or(2048));

  // Linear position scaling changes every frequency alike; Llama 3.1's "llama3" scaling is carried
  // by the rope_freqs.weight tensor (per-dimension factors), which GGUF converters write with the
  // scaling type left at none. YaRN and LongRoPE change attention too and are not implemented.
  const std::string scaling = file.get_string_opt(key("rope.scaling.type")).value_or("none");
  if (scaling == "linear") {
    const double factor = file.get_float_opt(key("rope.scaling.factor")).value_or(1.0);
    if (!(factor > 0)) fail<ModelFileError>("{}: {} must be positive", file.path(), key("rope.scaling.factor"));
    c.rope_freq_scale = static_cast<float>(1.0 / factor);
  } else if (scaling != "none" && scaling != "llama3") {
    fail<ModelFileError>("{} uses rope scaling '{}'; morphserve supports none, linear and llama3 (rope_freqs)",
                         file.path(), scaling);
  } else if (auto legacy = file.get_float_opt(key("rope.scale_linear"))) {
    if (!(*legacy > 0)) fail<ModelFileError>("{}: {} must be positive", file.path(), key("rope.scale_linear"));
    c.rope_freq_scale = static_cast<float>(1.0 / *legacy);
  }

  if (const GgufValue* tokens = file.find("tokenizer.ggml.tokens")) {
    c.vocab_size = static_cast<int>(tokens->as_array().size());
  } else if (has("vocab_size")) {
    c.vocab_size = get_int("vocab_size");
  }
  c.tied_output = file.find_tensor("output.weight") == nullptr;
  c.validate();
  return c;
}

}  // namespace morphserve
