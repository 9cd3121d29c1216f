#include "model/hf_checkpoint.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <span>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/aligned_buffer.h"
#include "core/error.h"
#include "core/half.h"
#include "model/hf_config.h"
#include "model/hf_tokenizer.h"
#include "model/rope_scaling.h"
#include "model/safetensors_file.h"
#include "model/safetensors_writer.h"
#include "model/strict_json.h"

namespace morphserve {

namespace fs = std::filesystem;

namespace {

// The checkpoint's tensors by name, over however many shard files it has.
class CheckpointTensors {
 public:
  explicit CheckpointTensors(const fs::path& dir) {
    const fs::path index = dir / "model.safetensors.index.json";
    std::vector<fs::path> shards;
    if (fs::exists(index)) {
      const nlohmann::json j = parse_strict_json(read_model_text_file(index), index.string(), 8);
      if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
        fail<ModelFileError>("{} has no weight_map object", index.string());
      }
      std::set<std::string> names;
      for (const auto& [tensor, file] : j["weight_map"].items()) {
        if (!file.is_string()) fail<ModelFileError>("{}: weight_map[\"{}\"] is not a file name", index.string(), tensor);
        const std::string name = file.get<std::string>();
        if (name.empty() || name.find('/') != std::string::npos || name == "..") {
          fail<ModelFileError>("{}: weight_map[\"{}\"] names '{}', not a file in the folder", index.string(), tensor, name);
        }
        if (names.insert(name).second) shards.push_back(dir / name);
      }
    } else if (fs::exists(dir / "model.safetensors")) {
      shards.push_back(dir / "model.safetensors");
    } else {
      fail<ModelFileError>("{} has neither model.safetensors nor model.safetensors.index.json", dir.string());
    }
    for (const fs::path& shard : shards) {
      files_.push_back(std::make_unique<SafetensorsFile>(SafetensorsFile::open(shard.string())));
      for (const SafetensorsTensor& t : files_.back()->tensors()) {
        if (!by_name_.emplace(t.name, &t).second) {
          fail<ModelFileError>("{}: tensor {} is stored in two shards", dir.string(), t.name);
        }
      }
    }
    dir_ = dir.string();
  }

  const SafetensorsTensor* find(const std::string& name) const {
    const auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : it->second;
  }

  const SafetensorsTensor& require(const std::string& name, std::vector<int64_t> shape) const {
    const SafetensorsTensor* t = find(name);
    if (!t) fail<ModelFileError>("{} has no tensor {}", dir_, name);
    if (t->shape != shape) {
      fail<ModelFileError>("{}: tensor {} has shape [{}], expected [{}]", t->file, name, fmt::join(t->shape, ", "),
                           fmt::join(shape, ", "));
    }
    (void)t->dtype();  // throws for a type morphserve cannot compute with
    return *t;
  }

  WeightMatrix matrix(Backend& backend, const std::string& name, int64_t rows, int64_t cols) const {
    const SafetensorsTensor& t = require(name, {rows, cols});
    const std::span<const std::byte> bytes = t.data();
    if (dtype_row_bytes(t.dtype(), cols) * static_cast<size_t>(rows) != bytes.size()) {
      fail<ModelFileError>("{}: tensor {} has an inconsistent size", t.file, name);
    }
    return WeightMatrix(backend, t.dtype(), rows, cols,
                        [bytes](std::byte* host) { std::memcpy(host, bytes.data(), bytes.size()); });
  }

  std::vector<float> vector(const std::string& name, int64_t n) const {
    const SafetensorsTensor& t = require(name, {n});
    std::vector<float> out(static_cast<size_t>(n));
    const std::byte* src = t.data().data();
    for (int64_t i = 0; i < n; ++i) {
      uint16_t half = 0;
      switch (t.dtype()) {
        case DType::F32: std::memcpy(&out[static_cast<size_t>(i)], src + i * 4, 4); break;
        case DType::F16:
          std::memcpy(&half, src + i * 2, 2);
          out[static_cast<size_t>(i)] = fp16_to_fp32(half);
          break;
        case DType::BF16:
          std::memcpy(&half, src + i * 2, 2);
          out[static_cast<size_t>(i)] = bf16_to_fp32(half);
          break;
        default: break;  // dtype() refused the others
      }
    }
    return out;
  }

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsTensor*> by_name_;
};

LlamaConfig llama_config_from_hf(const HfConfig& hf, const std::string& path, std::vector<float>& rope_freqs) {
  LlamaConfig c;
  if (hf.model_type == "qwen2") {
    c.arch = Architecture::Qwen2;
  } else if (hf.model_type != "llama" && hf.model_type != "mistral") {
    fail<ModelFileError>("{}: model_type '{}' is not served; morphserve loads llama, mistral and qwen2 checkpoints", path,
                         hf.model_type);
  }
  if (!hf.quantization_method.empty()) {
    fail<ModelFileError>("{} is a {}-quantized checkpoint; morphserve loads F32/F16/BF16 checkpoints (or GGUF files)",
                         path, hf.quantization_method);
  }
  if (hf.hidden_act != "silu") fail<ModelFileError>("{}: hidden_act '{}' is not supported (only silu)", path, hf.hidden_act);
  if (hf.mlp_bias) fail<ModelFileError>("{}: MLP biases (mlp_bias) are not supported", path);
  if (hf.use_sliding_window) fail<ModelFileError>("{}: sliding-window attention is not supported", path);
  c.name = fs::path(path).parent_path().filename().string();
  c.n_layers = static_cast<int>(hf.num_hidden_layers);
  c.n_embd = static_cast<int>(hf.hidden_size);
  c.n_ff = static_cast<int>(hf.intermediate_size);
  c.n_heads = static_cast<int>(hf.num_attention_heads);
  c.n_kv_heads = static_cast<int>(hf.num_key_value_heads);
  c.head_dim = static_cast<int>(hf.resolved_head_dim());
  c.rope_dims = c.head_dim;
  c.rope_neox = true;  // Hugging Face's rotate_half layout, see hf_checkpoint.h
  c.rope_freq_base = static_cast<float>(hf.rope_theta);
  c.rms_eps = static_cast<float>(hf.rms_norm_eps);
  c.context_length = hf.max_position_embeddings;
  // Within its window, Mistral's sliding-window attention is plain causal attention: serve only
  // that much context (Mistral 7B v0.1: 4096 of 32768) rather than attend differently past it.
  if (hf.model_type == "mistral" && hf.sliding_window && *hf.sliding_window < c.context_length) {
    c.context_length = *hf.sliding_window;
  }
  c.vocab_size = static_cast<int>(hf.vocab_size);
  c.tied_output = hf.tie_word_embeddings;
  if (const auto& s = hf.rope_scaling) {
    if (s->rope_type == "linear") {
      c.rope_freq_scale = static_cast<float>(1.0 / s->factor);
    } else if (s->rope_type == "llama3") {
      rope_freqs = llama3_rope_freq_factors(
          {s->factor, *s->low_freq_factor, *s->high_freq_factor,
           static_cast<double>(*s->original_max_position_embeddings)},
          c.rope_freq_base, c.rope_dims);
    } else {
      fail<ModelFileError>("{}: rope scaling '{}' is not supported (linear and llama3 are)", path, s->rope_type);
    }
  }
  c.validate();
  return c;
}

// Undoes llama.cpp's Llama Q/K permutation: GGUF row h*d + 2i + s holds Hugging Face row
// h*d + s*d/2 + i (d = head_dim, s in {0, 1}, i < d/2).
AlignedBuffer unpermute_rows(const MatrixView& m, int n_heads) {
  AlignedBuffer out(m.bytes());
  const int64_t d = m.rows / n_heads;
  const size_t row_bytes = m.row_bytes();
  for (int64_t h = 0; h < n_heads; ++h) {
    for (int64_t i = 0; i < d / 2; ++i) {
      for (int64_t s = 0; s < 2; ++s) {
        const int64_t from = h * d + 2 * i + s;
        const int64_t to = h * d + s * (d / 2) + i;
        std::memcpy(out.data() + to * row_bytes, m.row(from), row_bytes);
      }
    }
  }
  return out;
}

std::vector<float> unpermute_vector(const std::vector<float>& v, int n_heads) {
  if (v.empty()) return v;
  std::vector<float> out(v.size());
  const size_t d = v.size() / static_cast<size_t>(n_heads);
  for (size_t h = 0; h < static_cast<size_t>(n_heads); ++h) {
    for (size_t i = 0; i < d / 2; ++i) {
      out[h * d + i] = v[h * d + 2 * i];
      out[h * d + d / 2 + i] = v[h * d + 2 * i + 1];
    }
  }
  return out;
}

}  // namespace

bool is_hf_checkpoint(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) && fs::exists(fs::path(path) / "config.json", ec);
}

LlamaModel load_hf_checkpoint(const std::string& dir, Backend& backend) {
  const fs::path root(dir);
  const std::string config_path = (root / "config.json").string();
  const HfConfig hf = read_hf_config(config_path);
  LlamaWeights w;
  LlamaConfig c = llama_config_from_hf(hf, config_path, w.rope_freqs);
  c.name = root.filename().empty() ? root.parent_path().filename().string() : root.filename().string();
  const fs::path tokenizer_path = root / "tokenizer.json";
  if (!fs::exists(tokenizer_path)) fail<ModelFileError>("{} has no tokenizer.json", dir);
  HfTokenizer tok = read_hf_tokenizer(tokenizer_path.string(), hf);
  if (static_cast<int>(tok.vocab.tokens.size()) > c.vocab_size) {
    fail<ModelFileError>("{}: tokenizer.json has {} tokens but config.json's vocab_size is {}", dir,
                         tok.vocab.tokens.size(), c.vocab_size);
  }
  // Checkpoints pad the embedding past the tokenizer (Qwen2.5: 151936 rows, 151665 tokens); the
  // padding rows are never produced by the tokenizer and are filled as unused tokens.
  pad_vocab(tok.vocab, c.vocab_size);

  const CheckpointTensors tensors(root);
  const int64_t d = c.n_embd;
  w.token_embd = tensors.matrix(backend, "model.embed_tokens.weight", c.vocab_size, d);
  w.output_norm = tensors.vector("model.norm.weight", d);
  if (const SafetensorsTensor* head = tensors.find("lm_head.weight"); head && !c.tied_output) {
    w.output = tensors.matrix(backend, "lm_head.weight", c.vocab_size, d);
  } else if (!c.tied_output) {
    fail<ModelFileError>("{} has no lm_head.weight and tie_word_embeddings is false", dir);
  }
  const bool qkv_bias = hf.qkv_bias;
  w.layers.resize(static_cast<size_t>(c.n_layers));
  for (int l = 0; l < c.n_layers; ++l) {
    LayerWeights& layer = w.layers[static_cast<size_t>(l)];
    const std::string p = fmt::format("model.layers.{}.", l);
    layer.attn_norm = tensors.vector(p + "input_layernorm.weight", d);
    layer.ffn_norm = tensors.vector(p + "post_attention_layernorm.weight", d);
    layer.wq = tensors.matrix(backend, p + "self_attn.q_proj.weight", c.q_dim(), d);
    layer.wk = tensors.matrix(backend, p + "self_attn.k_proj.weight", c.kv_dim(), d);
    layer.wv = tensors.matrix(backend, p + "self_attn.v_proj.weight", c.kv_dim(), d);
    layer.wo = tensors.matrix(backend, p + "self_attn.o_proj.weight", d, c.q_dim());
    if (qkv_bias) {
      layer.bq = tensors.vector(p + "self_attn.q_proj.bias", c.q_dim());
      layer.bk = tensors.vector(p + "self_attn.k_proj.bias", c.kv_dim());
      layer.bv = tensors.vector(p + "self_attn.v_proj.bias", c.kv_dim());
    }
    if (hf.o_proj_bias) layer.bo = tensors.vector(p + "self_attn.o_proj.bias", d);
    layer.w_gate = tensors.matrix(backend, p + "mlp.gate_proj.weight", c.n_ff, d);
    layer.w_up = tensors.matrix(backend, p + "mlp.up_proj.weight", c.n_ff, d);
    layer.w_down = tensors.matrix(backend, p + "mlp.down_proj.weight", d, c.n_ff);
  }
  LlamaModel model{dir, std::move(c), Tokenizer(std::move(tok.vocab)), std::move(w)};
  model.chat_template = std::move(tok.chat_template);
  return model;
}

void write_hf_checkpoint(const LlamaModel& model, const std::string& dir, uint64_t max_shard_bytes) {
  const LlamaConfig& c = model.config;
  if (c.rope_dims != c.head_dim) {
    fail<InvalidArgument>("{} rotates {} of {} head dimensions; Hugging Face checkpoints rotate all of them",
                          model.source, c.rope_dims, c.head_dim);
  }
  if (c.rope_freq_scale != 1.0f && !model.weights.rope_freqs.empty()) {
    fail<InvalidArgument>("{} combines linear rope scaling with rope_freqs, which config.json cannot say", model.source);
  }
  HfConfig hf;
  hf.architecture = c.arch == Architecture::Qwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM";
  hf.model_type = c.arch == Architecture::Qwen2 ? "qwen2" : "llama";
  hf.hidden_size = c.n_embd;
  hf.intermediate_size = c.n_ff;
  hf.num_hidden_layers = c.n_layers;
  hf.num_attention_heads = c.n_heads;
  hf.num_key_value_heads = c.n_kv_heads;
  hf.head_dim = c.head_dim;
  hf.rms_norm_eps = c.rms_eps;
  hf.rope_theta = c.rope_freq_base;
  hf.max_position_embeddings = c.context_length;
  hf.vocab_size = c.vocab_size;
  hf.tie_word_embeddings = model.weights.output.empty();
  hf.torch_dtype = "float16";
  const Vocab& vocab = model.tokenizer.vocab();
  if (vocab.bos >= 0) hf.bos_token_id = {vocab.bos};
  if (vocab.eos >= 0) hf.eos_token_id = {vocab.eos};
  if (c.rope_freq_scale != 1.0f) hf.rope_scaling = HfRopeScaling{"linear", 1.0 / c.rope_freq_scale, {}, {}, {}};
  if (!model.weights.rope_freqs.empty()) {
    // config.json can only say "llama3" with its four numbers: the factors must be what they give.
    const Llama3RopeScaling s;
    if (llama3_rope_freq_factors(s, c.rope_freq_base, c.rope_dims) != model.weights.rope_freqs) {
      fail<InvalidArgument>("{}: its rope_freqs are not Llama 3's published scaling, which config.json cannot say",
                            model.source);
    }
    hf.rope_scaling = HfRopeScaling{"llama3", s.factor, s.low_freq_factor, s.high_freq_factor,
                                    static_cast<int64_t>(s.original_context)};
  }
  const LlamaWeights& w = model.weights;
  const bool has_qkv_bias = !w.layers.empty() && !w.layers[0].bq.empty();
  const bool has_o_bias = !w.layers.empty() && !w.layers[0].bo.empty();
  if (c.arch == Architecture::Qwen2) {
    if (has_o_bias) fail<InvalidArgument>("{}: a Qwen2 checkpoint cannot carry an output-projection bias", model.source);
    hf.qkv_bias = true;
  } else {
    if (has_qkv_bias != has_o_bias) {
      fail<InvalidArgument>("{}: Llama's attention_bias covers q, k, v and o alike, but only some have biases",
                            model.source);
    }
    hf.attention_bias = hf.qkv_bias = hf.o_proj_bias = has_qkv_bias;
  }

  fs::create_directories(dir);
  SafetensorsWriter writer;
  auto matrix = [&](const std::string& name, const WeightMatrix& m) {
    writer.add_tensor(name, m.type, {m.rows, m.cols}, m.data.data(), m.bytes());
  };
  auto unpermuted = [&](const std::string& name, const WeightMatrix& m, int n_heads) {
    const AlignedBuffer rows = unpermute_rows(m.view(), n_heads);
    writer.add_tensor(name, m.type, {m.rows, m.cols}, rows.data(), rows.size());
  };
  auto vector = [&](const std::string& name, const std::vector<float>& v) {
    writer.add_tensor(name, DType::F32, {static_cast<int64_t>(v.size())}, v.data(), v.size() * sizeof(float));
  };
  // A GGUF Llama has llama.cpp's permuted Q/K rows and runs adjacent-pair RoPE; the checkpoint
  // wants Hugging Face's order (see hf_checkpoint.h).
  const bool permuted = !c.rope_neox;
  matrix("model.embed_tokens.weight", w.token_embd);
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& layer = w.layers[l];
    const std::string p = fmt::format("model.layers.{}.", l);
    vector(p + "input_layernorm.weight", layer.attn_norm);
    vector(p + "post_attention_layernorm.weight", layer.ffn_norm);
    if (permuted) {
      unpermuted(p + "self_attn.q_proj.weight", layer.wq, c.n_heads);
      unpermuted(p + "self_attn.k_proj.weight", layer.wk, c.n_kv_heads);
    } else {
      matrix(p + "self_attn.q_proj.weight", layer.wq);
      matrix(p + "self_attn.k_proj.weight", layer.wk);
    }
    matrix(p + "self_attn.v_proj.weight", layer.wv);
    matrix(p + "self_attn.o_proj.weight", layer.wo);
    if (has_qkv_bias) {
      vector(p + "self_attn.q_proj.bias", permuted ? unpermute_vector(layer.bq, c.n_heads) : layer.bq);
      vector(p + "self_attn.k_proj.bias", permuted ? unpermute_vector(layer.bk, c.n_kv_heads) : layer.bk);
      vector(p + "self_attn.v_proj.bias", layer.bv);
    }
    if (has_o_bias) vector(p + "self_attn.o_proj.bias", layer.bo);
    matrix(p + "mlp.gate_proj.weight", layer.w_gate);
    matrix(p + "mlp.up_proj.weight", layer.w_up);
    matrix(p + "mlp.down_proj.weight", layer.w_down);
  }
  vector("model.norm.weight", w.output_norm);
  if (!w.output.empty()) matrix("lm_head.weight", w.output);
  writer.write_sharded(dir, max_shard_bytes);

  auto write_file = [&](const std::string& name, const std::string& text) {
    const fs::path path = fs::path(dir) / name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) fail<Error>("cannot write {}", path.string());
  };
  write_file("config.json", hf_config_to_json(hf));
  write_file("tokenizer.json", hf_tokenizer_json(vocab));
  if (!model.chat_template.empty()) {
    write_file("tokenizer_config.json", nlohmann::json({{"chat_template", model.chat_template}}).dump(2) + "\n");
  }
}

}  // namespace morphserve
