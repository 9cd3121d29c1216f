#pragma once
// One forward pass of a Llama model over a batch of sequences, each contributing a chunk of new
// tokens (a prefill chunk or one decode token). K/V are written into and read from paged blocks.
// Each layer runs in the DType its weights are in right now: there is no model-wide precision.
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "engine/kv_block_pool.h"
#include "engine/layer_linears.h"
#include "model/llama_weights.h"

namespace morphserve {

struct BatchSequence {
  std::span<const int32_t> tokens;  // the new tokens of this sequence
  int64_t first_pos = 0;            // position of tokens[0]; positions before it are in the KV blocks
  const std::vector<int32_t>* blocks = nullptr;  // block table covering first_pos + tokens.size()
  bool all_logits = false;          // logits for every new token (perplexity) or only the last
};

class LlamaRunner {
 public:
  // max_batch_tokens bounds the tokens of one forward pass (sizes the workspace, which is
  // allocated from `backend` against the "workspace" account). Every kernel of the pass runs
  // through `backend`. The model, pool and backend must outlive the runner.
  LlamaRunner(const LlamaModel& model, KvBlockPool& kv, Backend& backend, int64_t max_batch_tokens);
  static constexpr std::string_view kWorkspaceAccount = "workspace";

  // Runs the batch and returns the logits: for each sequence in order, one row (its last token)
  // or tokens.size() rows (all_logits), each of vocab_size floats. Valid until the next call.
  // Throws InvalidArgument for an empty or oversized batch, a token id outside the vocabulary,
  // or a block table too short for the positions.
  std::span<const float> forward(std::span<const BatchSequence> batch);

  // The views layer `layer` multiplies with now (initially the model's own weights).
  const LayerLinears& layer(int layer) const;
  // Repoints a layer's linear matrices (a swap to a replica and back). The views must have the
  // layer's shapes and stay valid until repointed again. Only between forward passes.
  void set_layer(int layer, const LayerLinears& views);

  // Called after every decoder layer with the residual stream before and after it (n_tokens rows
  // of n_embd floats): importance profiling reads layer inputs and outputs through it. Empty by
  // default, when the pass copies nothing.
  using LayerObserver = std::function<void(int layer, std::span<const float> input, std::span<const float> output)>;
  void set_layer_observer(LayerObserver observer) { observer_ = std::move(observer); }

  int64_t max_batch_tokens() const { return max_batch_tokens_; }
  int vocab_size() const { return model_.config.vocab_size; }
  int64_t context_length() const { return model_.config.context_length; }
  size_t workspace_bytes() const;
  // Workspace a runner with this many batch tokens needs (for budgeting before building one).
  static size_t workspace_bytes_for(const LlamaConfig& config, int64_t max_batch_tokens);

 private:
  void run_layer(int layer, std::span<const BatchSequence> batch, int64_t n_tokens);

  const LlamaModel& model_;
  KvBlockPool& kv_;
  Backend& backend_;
  int64_t max_batch_tokens_;
  ResidentBuffer workspace_;  // one allocation, carved into the buffers below
  float *x_ = nullptr, *xb_ = nullptr, *q_ = nullptr, *k_ = nullptr, *v_ = nullptr, *attn_ = nullptr;
  float *ffn_gate_ = nullptr, *ffn_up_ = nullptr, *logits_ = nullptr;
  std::vector<LayerLinears> layers_;
  LayerObserver observer_;
  std::vector<float> observed_input_;
  std::vector<int32_t> tokens_;     // the batch's tokens in order, for the embedding lookup
  std::vector<int32_t> positions_;
  std::vector<const std::byte*> k_blocks_, v_blocks_;
};

}  // namespace morphserve
