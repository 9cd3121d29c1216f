#pragma once
// The weights of a Llama model, held in resident memory (never a file mapping: DESIGN.md §4),
// each matrix allocated from the backend against the "weights" account before it is filled.
// Every linear matrix of every decoder layer carries its own DType, so any layer can run at any
// precision independently of the others: the primitive that layer swapping flips at run time.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "backend/backend.h"
#include "core/dtype.h"
#include "core/matrix_view.h"
#include "model/llama_config.h"
#include "model/tokenizer.h"

namespace morphserve {

// A matrix that owns its resident bytes.
struct WeightMatrix {
  static constexpr std::string_view kAccount = "weights";

  DType type = DType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  ResidentBuffer data;

  WeightMatrix() = default;
  // Allocates rows × cols of `type` from `backend` against kAccount (OutOfBudget when they do not
  // fit, before anything is read) and fills them: `fill` writes the bytes into the host memory it
  // is handed (Backend::copy_in). Returns once they are resident; rethrows fill's exception.
  WeightMatrix(Backend& backend, DType type, int64_t rows, int64_t cols, const std::function<void(std::byte* host)>& fill);
  MatrixView view() const { return {type, data.data(), rows, cols}; }
  size_t bytes() const { return data.size(); }
  bool empty() const { return rows == 0; }
};

struct LayerWeights {
  std::vector<float> attn_norm;
  std::vector<float> ffn_norm;
  WeightMatrix wq, wk, wv, wo;        // attention projections
  // Projection biases (Qwen2 has them on Q, K and V); empty when the model has none. Small, so
  // they stay resident in F32 whatever precision the layer's matrices run at.
  std::vector<float> bq, bk, bv, bo;
  WeightMatrix w_gate, w_up, w_down;  // SwiGLU feed-forward

  // The seven linear matrices, in a fixed order (for conversions and accounting).
  std::vector<WeightMatrix*> linears();
  std::vector<const WeightMatrix*> linears() const;
  size_t linear_bytes() const;
  // Bytes of the F32 vectors (norms and biases).
  size_t vector_bytes() const;
  // The precision the layer runs at (see dominant_matrix_type in core/matrix_view.h).
  DType dominant_type() const;
};

struct LlamaWeights {
  WeightMatrix token_embd;         // [vocab][n_embd]
  std::vector<float> output_norm;
  WeightMatrix output;             // [vocab][n_embd]; empty when tied to token_embd
  std::vector<LayerWeights> layers;
  // Per-pair RoPE frequency divisors (rope_dims/2 of them: Llama 3.1's "llama3" scaling), or empty.
  std::vector<float> rope_freqs;

  const WeightMatrix& classifier() const { return output.empty() ? token_embd : output; }
  size_t bytes() const;
};

struct LlamaModel {
  std::string source;  // path or dummy:... spec
  LlamaConfig config;
  Tokenizer tokenizer;
  LlamaWeights weights;
  std::string chat_template = {};  // tokenizer.chat_template (Jinja text), empty when the file has none
};

// Loads a GGUF Llama model; every tensor is copied into resident memory in its stored type.
// Throws ModelFileError for a missing or mis-shaped tensor, naming it and the expected shape.
// Every matrix is allocated from `backend`.
LlamaModel load_llama_gguf(const std::string& path, Backend& backend);

}  // namespace morphserve
