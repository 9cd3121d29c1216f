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

LlamaConfig llama_config_from_gguf(const GgufFile& file) {
  const std::string arch = file.get_string_opt("general.architecture").value_or("");
  if (arch != "llama") {
    fail<ModelFileError>("{} has architecture '{}'; morphserve serves only 'llama' models", file.path(),
                         arch.empty() ? "(none)" : arch);
  }
  auto get_int = [&](const char* key) {
    const uint64_t v = file.get_uint(key);
    if (v > static_cast<uint64_t>(INT32_MAX)) fail<ModelFileError>("{}: {} = {} is too large", file.path(), key, v);
    return static_cast<int>(v);
  };
  LlamaConfig c;
  c.name = file.get_string_opt("general.name").value_or("llama");
  c.n_layers = get_int("llama.block_count");
  c.n_embd = get_int("llama.embedding_length");
  c.n_ff = get_int("llama.feed_forward_length");
  c.n_heads = get_int("llama.attention.head_count");
  c.n_kv_heads = file.has("llama.attention.head_count_kv") ? get_int("llama.attention.head_count_kv") : c.n_heads;
  if (c.n_heads <= 0) fail<ModelFileError>("{}: llama.attention.head_count must be positive", file.path());
  c.head_dim = file.has("llama.attention.key_length") ? get_int("llama.attention.key_length") : c.n_embd / c.n_heads;
  if (file.has("llama.attention.value_length") && get_int("llama.attention.value_length") != c.head_dim) {
    fail<ModelFileError>("{}: different key and value head sizes are not supported", file.path());
  }
  c.rope_dims = file.has("llama.rope.dimension_count") ? get_int("llama.rope.dimension_count") : c.head_dim;
  c.rope_freq_base = static_cast<float>(file.get_float_opt("llama.rope.freq_base").value_or(10000.0));
  c.rms_eps = static_cast<float>(file.get_float_opt("llama.attention.layer_norm_rms_epsilon").value_or(1e-5));
  c.context_length = static_cast<int64_t>(file.get_uint_opt("llama.context_length").value_or(2048));

  // Only linear position scaling is implemented; the others change the frequencies per dimension.
  const std::string scaling = file.get_string_opt("llama.rope.scaling.type").value_or("none");
  if (scaling == "linear") {
    const double factor = file.get_float_opt("llama.rope.scaling.factor").value_or(1.0);
    if (factor <= 0) fail<ModelFileError>("{}: llama.rope.scaling.factor must be positive", file.path());
    c.rope_freq_scale = static_cast<float>(1.0 / factor);
  } else if (scaling != "none") {
    fail<ModelFileError>("{} uses rope scaling '{}'; morphserve supports only none and linear", file.path(), scaling);
  } else if (auto legacy = file.get_float_opt("llama.rope.scale_linear")) {
    c.rope_freq_scale = static_cast<float>(1.0 / *legacy);
  }
  if (file.find_tensor("rope_freqs.weight")) {
    fail<ModelFileError>("{} has per-dimension rope frequency factors (Llama 3.1 style), not supported yet",
                         file.path());
  }

  if (const GgufValue* tokens = file.find("tokenizer.ggml.tokens")) {
    c.vocab_size = static_cast<int>(tokens->as_array().size());
  } else if (file.has("llama.vocab_size")) {
    c.vocab_size = get_int("llama.vocab_size");
  }
  c.tied_output = file.find_tensor("output.weight") == nullptr;
  c.validate();
  return c;
}

}  // namespace morphserve
