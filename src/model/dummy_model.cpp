#include "model/dummy_model.h"

#include <cmath>
#include <cstring>
#include <functional>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "core/half.h"

namespace morphserve {

namespace {

struct NamedShape {
  const char* name;
  int n_layers, n_embd, n_ff, n_heads, n_kv_heads, vocab;
};

constexpr NamedShape kShapes[] = {
    {"tiny", 4, 128, 352, 4, 2, 512},
    {"small", 12, 768, 2048, 12, 12, 32000},
    {"1b", 16, 2048, 5632, 32, 8, 32000},
};

// splitmix64: tiny, fast, and good enough for weights nobody reads.
uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Uniform in [-amplitude, amplitude), deterministic for (seed, index) so threads can split rows.
void fill_uniform(WeightMatrix& m, uint64_t seed, float amplitude) {
  const int64_t n = m.rows * m.cols;
  const unsigned n_threads = std::max(1u, std::min(8u, std::thread::hardware_concurrency()));
  const int64_t chunk = (n + n_threads - 1) / n_threads;
  auto fill_range = [&](int64_t begin, int64_t end) {
    uint64_t state = seed ^ (static_cast<uint64_t>(begin) * 0xd1b54a32d192ed03ull);
    for (int64_t i = begin; i < end; ++i) {
      const float u = static_cast<float>(splitmix64(state) >> 40) * (1.0f / 16777216.0f);  // [0, 1)
      const float x = (2.0f * u - 1.0f) * amplitude;
      switch (m.type) {
        case DType::F32: m.data.as<float>()[i] = x; break;
        case DType::F16: m.data.as<uint16_t>()[i] = fp32_to_fp16(x); break;
        case DType::BF16: m.data.as<uint16_t>()[i] = fp32_to_bf16(x); break;
        default: break;
      }
    }
  };
  std::vector<std::thread> threads;
  for (unsigned t = 1; t < n_threads; ++t) {
    threads.emplace_back(fill_range, std::min(n, t * chunk), std::min(n, (t + 1) * chunk));
  }
  fill_range(0, std::min(n, chunk));
  for (auto& thread : threads) thread.join();
}

}  // namespace

std::vector<std::string> dummy_shape_names() {
  std::vector<std::string> names;
  for (const NamedShape& s : kShapes) names.emplace_back(s.name);
  return names;
}

LlamaConfig dummy_config(std::string_view shape) {
  for (const NamedShape& s : kShapes) {
    if (shape != s.name) continue;
    LlamaConfig c;
    c.name = fmt::format("dummy-{}", s.name);
    c.n_layers = s.n_layers;
    c.n_embd = s.n_embd;
    c.n_ff = s.n_ff;
    c.n_heads = s.n_heads;
    c.n_kv_heads = s.n_kv_heads;
    c.head_dim = s.n_embd / s.n_heads;
    c.rope_dims = c.head_dim;
    c.context_length = 4096;
    c.vocab_size = s.vocab;
    c.validate();
    return c;
  }
  fail<InvalidArgument>("unknown dummy model shape '{}' (known: {})", shape, fmt::join(dummy_shape_names(), ", "));
}

Vocab byte_level_vocab(int vocab_size) {
  if (vocab_size < 260) fail<InvalidArgument>("a byte-level vocabulary needs at least 260 tokens, got {}", vocab_size);
  Vocab v;
  v.tokens = {"<unk>", "<s>", "</s>"};
  v.types = {TokenType::Unknown, TokenType::Control, TokenType::Control};
  for (int b = 0; b < 256; ++b) {
    v.tokens.push_back(fmt::format("<0x{:02X}>", b));
    v.types.push_back(TokenType::Byte);
  }
  // The word-boundary piece, so a space costs one token instead of the three bytes of U+2581.
  v.tokens.push_back("\xe2\x96\x81");
  v.types.push_back(TokenType::Normal);
  for (int i = static_cast<int>(v.tokens.size()); i < vocab_size; ++i) {
    v.tokens.push_back(fmt::format("<unused{}>", i));
    v.types.push_back(TokenType::Unused);
  }
  v.scores.assign(v.tokens.size(), 0.0f);
  v.unk = 0;
  v.bos = 1;
  v.eos = 2;
  return v;
}

LlamaModel make_dummy_model(std::string_view shape, DType type) {
  if (type != DType::F32 && type != DType::F16 && type != DType::BF16) {
    fail<InvalidArgument>("dummy weights are generated as f32, f16 or bf16, not {}", dtype_name(type));
  }
  LlamaConfig c = dummy_config(shape);
  LlamaWeights w;
  uint64_t seed = 0x6d6f727068ull;  // fixed: the same shape always has the same weights
  auto matrix = [&](int64_t rows, int64_t cols) {
    WeightMatrix m(type, rows, cols);
    // Scaled so each output has about unit variance: activations stay in a sane range in every layer.
    fill_uniform(m, ++seed, std::sqrt(3.0f / static_cast<float>(cols)));
    return m;
  };
  w.token_embd = matrix(c.vocab_size, c.n_embd);
  w.output_norm.assign(static_cast<size_t>(c.n_embd), 1.0f);
  w.output = matrix(c.vocab_size, c.n_embd);
  w.layers.resize(static_cast<size_t>(c.n_layers));
  for (LayerWeights& layer : w.layers) {
    layer.attn_norm.assign(static_cast<size_t>(c.n_embd), 1.0f);
    layer.ffn_norm.assign(static_cast<size_t>(c.n_embd), 1.0f);
    layer.wq = matrix(c.q_dim(), c.n_embd);
    layer.wk = matrix(c.kv_dim(), c.n_embd);
    layer.wv = matrix(c.kv_dim(), c.n_embd);
    layer.wo = matrix(c.n_embd, c.q_dim());
    layer.w_gate = matrix(c.n_ff, c.n_embd);
    layer.w_up = matrix(c.n_ff, c.n_embd);
    layer.w_down = matrix(c.n_embd, c.n_ff);
  }
  Tokenizer tokenizer(byte_level_vocab(c.vocab_size));
  return LlamaModel{fmt::format("dummy:{}:{}", shape, dtype_name(type)), std::move(c), std::move(tokenizer),
                    std::move(w)};
}

}  // namespace morphserve
