#pragma once
// Writes a LlamaModel (a dummy model, usually) as a llama GGUF file that load_llama_gguf reads back:
// model files for the replica-store and `morphserve quantize` tests with no download.
#include <cstdint>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "model/dummy_model.h"
#include "model/gguf_writer.h"
#include "model/llama_weights.h"

namespace morphserve::testing {

inline void write_llama_gguf(const LlamaModel& model, const std::string& path) {
  const LlamaConfig& c = model.config;
  GgufWriter writer;
  writer.set("general.architecture", GgufValue::string("llama"));
  writer.set("general.name", GgufValue::string(c.name));
  writer.set("llama.block_count", GgufValue::u32(static_cast<uint32_t>(c.n_layers)));
  writer.set("llama.embedding_length", GgufValue::u32(static_cast<uint32_t>(c.n_embd)));
  writer.set("llama.feed_forward_length", GgufValue::u32(static_cast<uint32_t>(c.n_ff)));
  writer.set("llama.attention.head_count", GgufValue::u32(static_cast<uint32_t>(c.n_heads)));
  writer.set("llama.attention.head_count_kv", GgufValue::u32(static_cast<uint32_t>(c.n_kv_heads)));
  writer.set("llama.rope.dimension_count", GgufValue::u32(static_cast<uint32_t>(c.rope_dims)));
  writer.set("llama.context_length", GgufValue::u32(static_cast<uint32_t>(c.context_length)));
  writer.set("llama.attention.layer_norm_rms_epsilon", GgufValue::f32(c.rms_eps));

  const Vocab vocab = byte_level_vocab(c.vocab_size);
  GgufValue::Array tokens, scores, types;
  for (size_t i = 0; i < vocab.tokens.size(); ++i) {
    tokens.push_back(GgufValue::string(vocab.tokens[i]));
    scores.push_back(GgufValue::f32(vocab.scores[i]));
    types.push_back(GgufValue::i32(static_cast<int32_t>(vocab.types[i])));
  }
  writer.set("tokenizer.ggml.model", GgufValue::string("llama"));
  writer.set("tokenizer.ggml.tokens", GgufValue::array(GgufType::STRING, std::move(tokens)));
  writer.set("tokenizer.ggml.scores", GgufValue::array(GgufType::FLOAT32, std::move(scores)));
  writer.set("tokenizer.ggml.token_type", GgufValue::array(GgufType::INT32, std::move(types)));

  auto matrix = [&](const std::string& name, const WeightMatrix& m) {
    writer.add_tensor(name, {m.cols, m.rows}, m.type, m.data.data(), m.bytes());
  };
  auto vector = [&](const std::string& name, const std::vector<float>& v) {
    writer.add_tensor(name, {static_cast<int64_t>(v.size())}, DType::F32, v.data(), v.size() * sizeof(float));
  };
  const LlamaWeights& w = model.weights;
  matrix("token_embd.weight", w.token_embd);
  vector("output_norm.weight", w.output_norm);
  if (!w.output.empty()) matrix("output.weight", w.output);
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& layer = w.layers[l];
    const std::string p = fmt::format("blk.{}.", l);
    vector(p + "attn_norm.weight", layer.attn_norm);
    vector(p + "ffn_norm.weight", layer.ffn_norm);
    matrix(p + "attn_q.weight", layer.wq);
    matrix(p + "attn_k.weight", layer.wk);
    matrix(p + "attn_v.weight", layer.wv);
    matrix(p + "attn_output.weight", layer.wo);
    matrix(p + "ffn_gate.weight", layer.w_gate);
    matrix(p + "ffn_up.weight", layer.w_up);
    matrix(p + "ffn_down.weight", layer.w_down);
  }
  writer.write(path);
}

}  // namespace morphserve::testing
