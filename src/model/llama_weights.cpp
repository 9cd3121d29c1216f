#include "model/llama_weights.h"

#include <cmath>
#include <cstring>
#include <map>

#include <fmt/ranges.h>

#include "core/error.h"
#include "core/half.h"
#include "model/gguf_file.h"

namespace morphserve {

WeightMatrix::WeightMatrix(Backend& backend, DType t, int64_t r, int64_t c,
                           const std::function<void(std::byte* host)>& fill)
    : type(t), rows(r), cols(c), data(backend.allocate(kAccount, dtype_row_bytes(t, c) * static_cast<size_t>(r))) {
  backend.copy_in(data.data(), data.size(), fill).get();
}

std::vector<WeightMatrix*> LayerWeights::linears() { return {&wq, &wk, &wv, &wo, &w_gate, &w_up, &w_down}; }

std::vector<const WeightMatrix*> LayerWeights::linears() const {
  return {&wq, &wk, &wv, &wo, &w_gate, &w_up, &w_down};
}

size_t LayerWeights::linear_bytes() const {
  size_t total = 0;
  for (const WeightMatrix* m : linears()) total += m->bytes();
  return total;
}

DType LayerWeights::dominant_type() const {
  std::vector<MatrixView> views;
  for (const WeightMatrix* m : linears()) views.push_back(m->view());
  return dominant_matrix_type(views);
}

size_t LayerWeights::vector_bytes() const {
  return (attn_norm.size() + ffn_norm.size() + bq.size() + bk.size() + bv.size() + bo.size()) * sizeof(float);
}

size_t LlamaWeights::bytes() const {
  size_t total = token_embd.bytes() + output.bytes() + (output_norm.size() + rope_freqs.size()) * sizeof(float);
  for (const LayerWeights& layer : layers) total += layer.linear_bytes() + layer.vector_bytes();
  return total;
}

namespace {

const GgufTensorInfo& require_tensor(const GgufFile& file, const std::string& name, std::vector<int64_t> dims) {
  const GgufTensorInfo* info = file.find_tensor(name);
  if (!info) fail<ModelFileError>("{} is missing tensor {}", file.path(), name);
  if (info->dims != dims) {
    auto show = [](const std::vector<int64_t>& d) { return fmt::format("[{}]", fmt::join(d, ", ")); };
    fail<ModelFileError>("{}: tensor {} has shape {} but this model's configuration needs {}", file.path(), name,
                         show(info->dims), show(dims));
  }
  return *info;
}

WeightMatrix load_matrix(Backend& backend, const GgufFile& file, const std::string& name, int64_t rows, int64_t cols) {
  const GgufTensorInfo& info = require_tensor(file, name, {cols, rows});
  if (dtype_row_bytes(info.type, cols) * static_cast<size_t>(rows) != info.bytes) {
    fail<ModelFileError>("{}: tensor {} has an inconsistent size", file.path(), name);
  }
  return WeightMatrix(backend, info.type, rows, cols, [&info](std::byte* host) { std::memcpy(host, info.data, info.bytes); });
}

// Norm and bias weights are vectors; llama.cpp keeps them F32, but accept the other float types too.
std::vector<float> load_vector(const GgufFile& file, const std::string& name, int64_t n) {
  const GgufTensorInfo& info = require_tensor(file, name, {n});
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    uint16_t half = 0;
    switch (info.type) {
      case DType::F32:
        std::memcpy(&out[i], info.data + i * 4, 4);
        break;
      case DType::F16:
        std::memcpy(&half, info.data + i * 2, 2);
        out[i] = fp16_to_fp32(half);
        break;
      case DType::BF16:
        std::memcpy(&half, info.data + i * 2, 2);
        out[i] = bf16_to_fp32(half);
        break;
      default:
        fail<ModelFileError>("{}: norm tensor {} is {}, expected a float type", file.path(), name,
                             dtype_name(info.type));
    }
  }
  return out;
}

}  // namespace

LlamaModel load_llama_gguf(const std::string& path, Backend& backend) {
  const GgufFile file = GgufFile::open(path);
  LlamaConfig config = llama_config_from_gguf(file);
  Tokenizer tokenizer(vocab_from_gguf(file));
  if (tokenizer.vocab_size() != config.vocab_size) {
    fail<ModelFileError>("{}: tokenizer has {} tokens but the model has {}", path, tokenizer.vocab_size(),
                         config.vocab_size);
  }
  LlamaWeights w;
  const int64_t d = config.n_embd;
  w.token_embd = load_matrix(backend, file, "token_embd.weight", config.vocab_size, d);
  w.output_norm = load_vector(file, "output_norm.weight", d);
  if (!config.tied_output) w.output = load_matrix(backend, file, "output.weight", config.vocab_size, d);
  w.layers.resize(static_cast<size_t>(config.n_layers));
  for (int l = 0; l < config.n_layers; ++l) {
    const std::string prefix = fmt::format("blk.{}.", l);
    LayerWeights& layer = w.layers[static_cast<size_t>(l)];
    layer.attn_norm = load_vector(file, prefix + "attn_norm.weight", d);
    layer.ffn_norm = load_vector(file, prefix + "ffn_norm.weight", d);
    layer.wq = load_matrix(backend, file, prefix + "attn_q.weight", config.q_dim(), d);
    layer.wk = load_matrix(backend, file, prefix + "attn_k.weight", config.kv_dim(), d);
    layer.wv = load_matrix(backend, file, prefix + "attn_v.weight", config.kv_dim(), d);
    layer.wo = load_matrix(backend, file, prefix + "attn_output.weight", d, config.q_dim());
    layer.w_gate = load_matrix(backend, file, prefix + "ffn_gate.weight", config.n_ff, d);
    layer.w_up = load_matrix(backend, file, prefix + "ffn_up.weight", config.n_ff, d);
    layer.w_down = load_matrix(backend, file, prefix + "ffn_down.weight", d, config.n_ff);
    // llama.cpp requires Qwen2's Q/K/V biases and takes any of the four when a Llama file has them.
    const bool biases_required = config.arch == Architecture::Qwen2;
    auto bias = [&](const char* name, int64_t n, bool required) -> std::vector<float> {
      const std::string full = prefix + name;
      if (!required && !file.find_tensor(full)) return {};
      return load_vector(file, full, n);
    };
    layer.bq = bias("attn_q.bias", config.q_dim(), biases_required);
    layer.bk = bias("attn_k.bias", config.kv_dim(), biases_required);
    layer.bv = bias("attn_v.bias", config.kv_dim(), biases_required);
    layer.bo = bias("attn_output.bias", d, false);
  }
  if (file.find_tensor("rope_freqs.weight")) {
    w.rope_freqs = load_vector(file, "rope_freqs.weight", config.rope_dims / 2);
    for (float f : w.rope_freqs) {
      if (!(f > 0) || !std::isfinite(f)) {
        fail<ModelFileError>("{}: rope_freqs.weight holds {}, but frequency factors must be positive", path, f);
      }
    }
  }
  LlamaModel model{path, std::move(config), std::move(tokenizer), std::move(w)};
  // Only the server reads it, and it reports a template it cannot use, so a mistyped one is not fatal here.
  if (const GgufValue* t = file.find("tokenizer.chat_template"); t && t->type() == GgufType::STRING) {
    model.chat_template = t->as_string();
  }
  return model;
}

}  // namespace morphserve
