#include "model/llama_gguf_writer.h"

#include <fmt/format.h>

#include "model/gguf_writer.h"

namespace morphserve {

namespace {

void set_vocab(GgufWriter& writer, const Vocab& vocab) {
  GgufValue::Array tokens, scores, types;
  for (size_t i = 0; i < vocab.tokens.size(); ++i) {
    tokens.push_back(GgufValue::string(vocab.tokens[i]));
    scores.push_back(GgufValue::f32(vocab.scores[i]));
    types.push_back(GgufValue::i32(static_cast<int32_t>(vocab.types[i])));
  }
  const bool bpe = vocab.model == TokenizerModel::Bpe;
  writer.set("tokenizer.ggml.model", GgufValue::string(bpe ? "gpt2" : "llama"));
  if (bpe) writer.set("tokenizer.ggml.pre", GgufValue::string(vocab.pre.empty() ? "default" : vocab.pre));
  writer.set("tokenizer.ggml.tokens", GgufValue::array(GgufType::STRING, std::move(tokens)));
  writer.set("tokenizer.ggml.scores", GgufValue::array(GgufType::FLOAT32, std::move(scores)));
  writer.set("tokenizer.ggml.token_type", GgufValue::array(GgufType::INT32, std::move(types)));
  if (bpe) {
    GgufValue::Array merges;
    for (const std::string& m : vocab.merges) merges.push_back(GgufValue::string(m));
    writer.set("tokenizer.ggml.merges", GgufValue::array(GgufType::STRING, std::move(merges)));
  }
  // Unset (-1) is stored as 0xFFFFFFFF: both readers then keep no such token (llama.cpp warns
  // about an id outside the vocabulary), whereas a missing key would bring back a default id.
  auto id = [&](const char* key, int32_t value) {
    writer.set(key, GgufValue::u32(value >= 0 ? static_cast<uint32_t>(value) : 0xFFFFFFFFu));
  };
  id("tokenizer.ggml.bos_token_id", vocab.bos);
  id("tokenizer.ggml.eos_token_id", vocab.eos);
  id("tokenizer.ggml.unknown_token_id", vocab.unk);
  if (vocab.eot >= 0) id("tokenizer.ggml.eot_token_id", vocab.eot);
  if (vocab.eom >= 0) id("tokenizer.ggml.eom_token_id", vocab.eom);
  if (vocab.pad >= 0) id("tokenizer.ggml.padding_token_id", vocab.pad);
  writer.set("tokenizer.ggml.add_bos_token", GgufValue::boolean(vocab.add_bos));
  writer.set("tokenizer.ggml.add_eos_token", GgufValue::boolean(vocab.add_eos));
  writer.set("tokenizer.ggml.add_space_prefix", GgufValue::boolean(vocab.add_space_prefix));
}

}  // namespace

void write_llama_gguf(const LlamaModel& model, const std::string& path) {
  const LlamaConfig& c = model.config;
  const std::string arch(architecture_name(c.arch));
  GgufWriter writer;
  auto u32 = [&](const char* key, int64_t v) { writer.set(arch + "." + key, GgufValue::u32(static_cast<uint32_t>(v))); };
  auto f32 = [&](const char* key, float v) { writer.set(arch + "." + key, GgufValue::f32(v)); };
  writer.set("general.architecture", GgufValue::string(arch));
  writer.set("general.name", GgufValue::string(c.name));
  u32("block_count", c.n_layers);
  u32("context_length", c.context_length);
  u32("embedding_length", c.n_embd);
  u32("feed_forward_length", c.n_ff);
  u32("attention.head_count", c.n_heads);
  u32("attention.head_count_kv", c.n_kv_heads);
  u32("attention.key_length", c.head_dim);
  u32("attention.value_length", c.head_dim);
  u32("rope.dimension_count", c.rope_dims);
  u32("vocab_size", c.vocab_size);
  f32("rope.freq_base", c.rope_freq_base);
  f32("attention.layer_norm_rms_epsilon", c.rms_eps);
  if (c.rope_freq_scale != 1.0f) {
    writer.set(arch + ".rope.scaling.type", GgufValue::string("linear"));
    f32("rope.scaling.factor", 1.0f / c.rope_freq_scale);
  }
  set_vocab(writer, model.tokenizer.vocab());
  if (!model.chat_template.empty()) writer.set("tokenizer.chat_template", GgufValue::string(model.chat_template));

  auto matrix = [&](const std::string& name, const WeightMatrix& m) {
    writer.add_tensor(name, {m.cols, m.rows}, m.type, m.data.data(), m.bytes());
  };
  auto vector = [&](const std::string& name, const std::vector<float>& v) {
    if (v.empty()) return;
    writer.add_tensor(name, {static_cast<int64_t>(v.size())}, DType::F32, v.data(), v.size() * sizeof(float));
  };
  const LlamaWeights& w = model.weights;
  matrix("token_embd.weight", w.token_embd);
  vector("output_norm.weight", w.output_norm);
  if (!w.output.empty()) matrix("output.weight", w.output);
  vector("rope_freqs.weight", w.rope_freqs);
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& layer = w.layers[l];
    const std::string p = fmt::format("blk.{}.", l);
    vector(p + "attn_norm.weight", layer.attn_norm);
    vector(p + "ffn_norm.weight", layer.ffn_norm);
    matrix(p + "attn_q.weight", layer.wq);
    matrix(p + "attn_k.weight", layer.wk);
    matrix(p + "attn_v.weight", layer.wv);
    matrix(p + "attn_output.weight", layer.wo);
    vector(p + "attn_q.bias", layer.bq);
    vector(p + "attn_k.bias", layer.bk);
    vector(p + "attn_v.bias", layer.bv);
    vector(p + "attn_output.bias", layer.bo);
    matrix(p + "ffn_gate.weight", layer.w_gate);
    matrix(p + "ffn_up.weight", layer.w_up);
    matrix(p + "ffn_down.weight", layer.w_down);
  }
  writer.write(path);
}

}  // namespace morphserve
