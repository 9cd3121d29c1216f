#pragma once
// Hyper-parameters of a Llama-family model (Llama 1/2/3, Mistral, Qwen2/2.5), read from GGUF
// metadata (`<arch>.*` keys) or built from a Hugging Face config.json.
#include <cstdint>
#include <string>
#include <string_view>

namespace morphserve {

class GgufFile;

// The decoder families morphserve runs. They share one forward pass (RMSNorm, GQA attention with
// RoPE, SwiGLU); they differ in the details recorded in LlamaConfig (biases, RoPE layout).
enum class Architecture { Llama, Qwen2 };
// GGUF's general.architecture spelling: "llama", "qwen2".
std::string_view architecture_name(Architecture arch);

struct LlamaConfig {
  std::string name;           // general.name, for logs
  Architecture arch = Architecture::Llama;
  int n_layers = 0;
  int n_embd = 0;             // model width
  int n_ff = 0;               // feed-forward width
  int n_heads = 0;
  int n_kv_heads = 0;         // < n_heads: grouped-query attention
  int head_dim = 0;
  int rope_dims = 0;          // rotated dimensions per head
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;  // 1 / linear scaling factor
  // Pairs are (x[i], x[i + rope_dims/2]) rather than (x[2i], x[2i+1]): Qwen2's layout, and a
  // Hugging Face Llama checkpoint's (GGUF conversion permutes Llama's Q/K rows into adjacent pairs).
  bool rope_neox = false;
  float rms_eps = 1e-5f;
  int64_t context_length = 0;
  int vocab_size = 0;
  bool tied_output = false;   // no output.weight: the embedding doubles as the classifier

  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }
  // Throws ModelFileError when the numbers cannot describe a working model.
  void validate() const;
};

// Reads `<arch>.*` metadata for general.architecture llama or qwen2. Throws ModelFileError for
// another architecture, missing keys, or rope scaling morphserve does not implement. Per-dimension
// rope frequency factors (Llama 3.1's llama3 scaling) come as the tensor rope_freqs.weight, which
// the weights loader reads.
LlamaConfig llama_config_from_gguf(const GgufFile& file);

}  // namespace morphserve
