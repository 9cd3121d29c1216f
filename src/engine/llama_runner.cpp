#include "engine/llama_runner.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace morphserve {

namespace {

struct WorkspaceShape {
  size_t x, xb, q, kv, attn, ffn, logits;
};

WorkspaceShape workspace_shape(const LlamaConfig& c, int64_t t) {
  const auto n = static_cast<size_t>(t);
  return {n * c.n_embd,
          n * static_cast<size_t>(std::max(c.n_embd, c.q_dim())),
          n * c.q_dim(),
          n * c.kv_dim(),
          n * c.q_dim(),
          n * c.n_ff,
          n * c.vocab_size};
}

// Floats of each workspace buffer, rounded up so that every one starts aligned.
size_t aligned_floats(size_t n) {
  constexpr size_t per_line = Backend::kAlignment / sizeof(float);
  return (n + per_line - 1) / per_line * per_line;
}

// The bias (when the model has one) added to every token's row of y.
void add_bias(Backend& backend, const std::vector<float>& bias, int64_t n_tokens, float* y) {
  if (bias.empty()) return;
  const auto width = static_cast<int64_t>(bias.size());
  for (int64_t t = 0; t < n_tokens; ++t) backend.add(y + t * width, bias.data(), width);
}

// y = W·x, then the bias.
void linear(Backend& backend, const MatrixView& w, const std::vector<float>& bias, const float* x, int64_t n_tokens,
            float* y) {
  backend.matmul(w, x, n_tokens, y);
  add_bias(backend, bias, n_tokens, y);
}

}  // namespace

size_t LlamaRunner::workspace_bytes_for(const LlamaConfig& config, int64_t max_batch_tokens) {
  const WorkspaceShape s = workspace_shape(config, max_batch_tokens);
  size_t floats = 0;
  for (size_t n : {s.x, s.xb, s.q, s.kv, s.kv, s.attn, s.ffn, s.ffn, s.logits}) floats += aligned_floats(n);
  return sizeof(float) * floats;
}

LlamaRunner::LlamaRunner(const LlamaModel& model, KvBlockPool& kv, Backend& backend, int64_t max_batch_tokens)
    : model_(model), kv_(kv), backend_(backend), max_batch_tokens_(max_batch_tokens) {
  if (max_batch_tokens <= 0) fail<InvalidArgument>("max batch tokens must be positive, got {}", max_batch_tokens);
  const LlamaConfig& c = model.config;
  if (kv.layout().n_layers != c.n_layers || kv.layout().kv_dim != c.kv_dim()) {
    fail<InvalidArgument>("the KV pool's layout does not match model '{}'", c.name);
  }
  const WorkspaceShape s = workspace_shape(c, max_batch_tokens);
  workspace_ = backend_.allocate(kWorkspaceAccount, workspace_bytes_for(c, max_batch_tokens));
  float* next = reinterpret_cast<float*>(workspace_.data());
  auto carve = [&next](size_t n) {
    float* buffer = next;
    next += aligned_floats(n);
    return buffer;
  };
  x_ = carve(s.x);
  xb_ = carve(s.xb);
  q_ = carve(s.q);
  k_ = carve(s.kv);
  v_ = carve(s.kv);
  attn_ = carve(s.attn);
  ffn_gate_ = carve(s.ffn);
  ffn_up_ = carve(s.ffn);
  logits_ = carve(s.logits);
  tokens_.resize(static_cast<size_t>(max_batch_tokens));
  positions_.resize(static_cast<size_t>(max_batch_tokens));
  layers_.reserve(model.weights.layers.size());
  for (const LayerWeights& layer : model.weights.layers) layers_.push_back(LayerLinears::of(layer));
}

const LayerLinears& LlamaRunner::layer(int layer) const {
  if (layer < 0 || layer >= static_cast<int>(layers_.size())) {
    fail<InvalidArgument>("layer {} is outside the model's {} layers", layer, layers_.size());
  }
  return layers_[static_cast<size_t>(layer)];
}

void LlamaRunner::set_layer(int layer, const LayerLinears& views) {
  const LayerLinears& current = this->layer(layer);
  if (!views.same_shapes(current)) fail<InvalidArgument>("replacement weights for layer {} have the wrong shapes", layer);
  for (const MatrixView& v : views.m) {
    if (!v.data) fail<InvalidArgument>("replacement weights for layer {} have no data", layer);
  }
  layers_[static_cast<size_t>(layer)] = views;
}

size_t LlamaRunner::workspace_bytes() const { return workspace_bytes_for(model_.config, max_batch_tokens_); }

std::span<const float> LlamaRunner::forward(std::span<const BatchSequence> batch) {
  const LlamaConfig& c = model_.config;
  int64_t n_tokens = 0;
  for (const BatchSequence& seq : batch) {
    if (seq.tokens.empty()) fail<InvalidArgument>("a batch sequence has no tokens");
    if (!seq.blocks) fail<InvalidArgument>("a batch sequence has no block table");
    const int64_t end = seq.first_pos + static_cast<int64_t>(seq.tokens.size());
    if (seq.first_pos < 0 || end > c.context_length) {
      fail<InvalidArgument>("positions up to {} exceed the model's context of {}", end, c.context_length);
    }
    if (static_cast<int64_t>(seq.blocks->size()) * kv_.layout().block_size < end) {
      fail<InvalidArgument>("block table holds {} blocks, too few for {} positions", seq.blocks->size(), end);
    }
    for (int32_t token : seq.tokens) {
      if (token < 0 || token >= c.vocab_size) {
        fail<InvalidArgument>("token id {} is outside the vocabulary (0-{})", token, c.vocab_size - 1);
      }
    }
    n_tokens += static_cast<int64_t>(seq.tokens.size());
  }
  if (n_tokens == 0) fail<InvalidArgument>("empty batch");
  if (n_tokens > max_batch_tokens_) {
    fail<InvalidArgument>("batch of {} tokens exceeds the runner's limit of {}", n_tokens, max_batch_tokens_);
  }

  // Embedding lookup, in whatever type the embedding is stored.
  float* x = x_;
  int64_t t = 0;
  for (const BatchSequence& seq : batch) {
    for (size_t i = 0; i < seq.tokens.size(); ++i, ++t) {
      tokens_[static_cast<size_t>(t)] = seq.tokens[i];
      positions_[static_cast<size_t>(t)] = static_cast<int32_t>(seq.first_pos + static_cast<int64_t>(i));
    }
  }
  backend_.embed(model_.weights.token_embd.view(), tokens_.data(), n_tokens, x);

  const auto hidden = static_cast<size_t>(n_tokens * c.n_embd);
  for (int l = 0; l < c.n_layers; ++l) {
    if (observer_) observed_input_.assign(x, x + hidden);
    run_layer(l, batch, n_tokens);
    if (observer_) observer_(l, observed_input_, std::span<const float>(x, hidden));
  }

  // Final norm and classifier, only on the rows whose logits are wanted.
  float* selected = xb_;
  int64_t n_rows = 0;
  t = 0;
  for (const BatchSequence& seq : batch) {
    const auto n = static_cast<int64_t>(seq.tokens.size());
    const int64_t first = seq.all_logits ? t : t + n - 1;
    const int64_t rows = t + n - first;
    backend_.copy_within_now(reinterpret_cast<std::byte*>(selected + n_rows * c.n_embd),
                             reinterpret_cast<const std::byte*>(x + first * c.n_embd),
                             static_cast<size_t>(rows * c.n_embd) * sizeof(float));
    n_rows += rows;
    t += n;
  }
  backend_.rms_norm(selected, model_.weights.output_norm.data(), selected, n_rows, c.n_embd, c.rms_eps);
  float* logits = logits_;
  backend_.matmul(model_.weights.classifier().view(), selected, n_rows, logits);
  return {logits, static_cast<size_t>(n_rows * c.vocab_size)};
}

void LlamaRunner::run_layer(int l, std::span<const BatchSequence> batch, int64_t n_tokens) {
  const LlamaConfig& c = model_.config;
  // Norms and biases stay with the model; only the linear matrices are repointed by swaps.
  const LayerWeights& norms = model_.weights.layers[static_cast<size_t>(l)];
  const LayerLinears& w = layers_[static_cast<size_t>(l)];
  float* x = x_;
  float* xb = xb_;
  float* q = q_;
  float* k = k_;
  float* v = v_;
  float* attn = attn_;

  // Attention block.
  backend_.rms_norm(x, norms.attn_norm.data(), xb, n_tokens, c.n_embd, c.rms_eps);
  const MatmulOutput qkv[] = {{w.wq(), q}, {w.wk(), k}, {w.wv(), v}};
  backend_.matmul_shared_input(qkv, xb, n_tokens);
  add_bias(backend_, norms.bq, n_tokens, q);
  add_bias(backend_, norms.bk, n_tokens, k);
  add_bias(backend_, norms.bv, n_tokens, v);
  const std::vector<float>& freq_factors = model_.weights.rope_freqs;
  const RopeParams rope_params{c.head_dim, c.rope_dims, c.rope_freq_base, c.rope_freq_scale, c.rope_neox,
                               freq_factors.empty() ? nullptr : freq_factors.data()};
  backend_.rope(q, n_tokens, c.n_heads, positions_.data(), rope_params);
  backend_.rope(k, n_tokens, c.n_kv_heads, positions_.data(), rope_params);

  const KvLayout& layout = kv_.layout();
  const size_t row_bytes = static_cast<size_t>(c.kv_dim()) * layout.element_bytes();
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  int64_t t = 0;
  for (const BatchSequence& seq : batch) {
    const auto n = static_cast<int64_t>(seq.tokens.size());
    for (int64_t i = 0; i < n; ++i) {
      const int64_t pos = seq.first_pos + i;
      const int32_t block = (*seq.blocks)[static_cast<size_t>(pos / layout.block_size)];
      const size_t slot = static_cast<size_t>(pos % layout.block_size) * row_bytes;
      backend_.kv_store(layout.type, k + (t + i) * c.kv_dim(), kv_.k_data(block, l) + slot, c.kv_dim());
      backend_.kv_store(layout.type, v + (t + i) * c.kv_dim(), kv_.v_data(block, l) + slot, c.kv_dim());
    }
    const size_t n_blocks = static_cast<size_t>((seq.first_pos + n + layout.block_size - 1) / layout.block_size);
    k_blocks_.resize(n_blocks);
    v_blocks_.resize(n_blocks);
    for (size_t b = 0; b < n_blocks; ++b) {
      k_blocks_[b] = kv_.k_data((*seq.blocks)[b], l);
      v_blocks_[b] = kv_.v_data((*seq.blocks)[b], l);
    }
    const KvBlocks view{layout.type, k_blocks_.data(), v_blocks_.data(), layout.block_size, c.n_kv_heads, c.head_dim};
    backend_.attention(q + t * c.q_dim(), n, seq.first_pos, c.n_heads, view, scale, attn + t * c.q_dim());
    t += n;
  }
  linear(backend_, w.wo(), norms.bo, attn, n_tokens, xb);
  backend_.add(x, xb, n_tokens * c.n_embd);

  // Feed-forward block (SwiGLU).
  float* gate = ffn_gate_;
  float* up = ffn_up_;
  backend_.rms_norm(x, norms.ffn_norm.data(), xb, n_tokens, c.n_embd, c.rms_eps);
  const MatmulOutput gate_up[] = {{w.w_gate(), gate}, {w.w_up(), up}};
  backend_.matmul_shared_input(gate_up, xb, n_tokens);
  backend_.silu_mul(gate, up, gate, n_tokens * c.n_ff);
  backend_.matmul(w.w_down(), gate, n_tokens, xb);
  backend_.add(x, xb, n_tokens * c.n_embd);
}

}  // namespace morphserve
