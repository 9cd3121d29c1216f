#pragma once
// Hyper-parameters of a Llama-family model, read from GGUF metadata (llama.* keys).
#include <cstdint>
#include <string>

namespace morphserve {

class GgufFile;

struct LlamaConfig {
  std::string name;           // general.name, for /v1/models and logs
  int n_layers = 0;
  int n_embd = 0;             // model width
  int n_ff = 0;               // feed-forward width
  int n_heads = 0;
  int n_kv_heads = 0;         // < n_heads: grouped-query attention
  int head_dim = 0;
  int rope_dims = 0;          // rotated dimensions per head
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;  // 1 / linear scaling factor
  float rms_eps = 1e-5f;
  int64_t context_length = 0;
  int vocab_size = 0;
  bool tied_output = false;   // no output.weight: the embedding doubles as the classifier

  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }
  // Throws ModelFileError when the numbers cannot describe a working model.
  void validate() const;
};

// Reads llama.* metadata. Throws ModelFileError for another architecture, missing keys, or
// rope scaling morphserve does not implement.
LlamaConfig llama_config_from_gguf(const GgufFile& file);

}  // namespace morphserve
