#include "model/dummy_model.h"

#include <cmath>
#include <cstring>
#include <functional>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "core/half.h"
#include "model/rope_scaling.h"
#include "model/tokenizer_bpe.h"
#include "model/tokenizer_special_tokens.h"

namespace morphserve {

namespace {

// What sets a family apart in a dummy: Llama 2 style (SentencePiece bytes, untied output), Llama 3
// (128K vocabulary, rope base 500000 with llama3 frequency factors, tied embeddings as in 3.2 1B),
// Qwen2.5 (Q/K/V biases, NEOX RoPE, rope base 1e6, tied embeddings), Mistral 7B v0.2+ (llama
// architecture with a SentencePiece vocabulary of 32000, GQA 4:1, rope base 1e6, 32K context, untied
// output, the [INST] template without a system role).
enum class Family { Llama2, Llama3, Qwen2, Mistral };

struct NamedShape {
  const char* name;
  Family family;
  int n_layers, n_embd, n_ff, n_heads, n_kv_heads, vocab;
};

constexpr NamedShape kShapes[] = {
    {"tiny", Family::Llama2, 4, 128, 352, 4, 2, 512},
    {"small", Family::Llama2, 12, 768, 2048, 12, 12, 32000},
    {"1b", Family::Llama2, 16, 2048, 5632, 32, 8, 32000},
    // Llama-3.2-1B's and Qwen2.5-0.5B's shapes, and two-layer narrow versions with the same
    // vocabularies and features for tests (widths multiples of 256, as K-quants need).
    {"llama3-1b", Family::Llama3, 16, 2048, 8192, 32, 8, 128256},
    {"qwen2.5-0.5b", Family::Qwen2, 24, 896, 4864, 14, 2, 151936},
    {"llama3-tiny", Family::Llama3, 2, 256, 768, 4, 2, 128256},
    {"qwen2-tiny", Family::Qwen2, 2, 256, 768, 4, 2, 151936},
    // Mistral 7B's vocabulary and head ratio in a two-layer narrow model (its real shape is 14 GB at F16).
    {"mistral-tiny", Family::Mistral, 2, 256, 768, 8, 2, 32000},
};

const NamedShape& find_shape(std::string_view shape) {
  for (const NamedShape& s : kShapes) {
    if (shape == s.name) return s;
  }
  fail<InvalidArgument>("unknown dummy model shape '{}' (known: {})", shape, fmt::join(dummy_shape_names(), ", "));
}

// Chat templates with the markers the server recognises each family by (server/chat_template.h),
// shortened forms of Meta's Llama 3 template and Qwen2's ChatML one.
std::string dummy_chat_template(Family family) {
  switch (family) {
    case Family::Llama2: return {};
    case Family::Mistral:  // Mistral-7B-Instruct's own template
      return "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
             "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
             "{{ message['content'] + eos_token }}{% endif %}{% endfor %}";
    case Family::Llama3:
      return "{{ bos_token }}{% for message in messages %}<|start_header_id|>{{ message['role'] }}<|end_header_id|>"
             "\n\n{{ message['content'] | trim }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}"
             "<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}";
    case Family::Qwen2:
      return "{% if messages[0]['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
             "{% endif %}{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
             "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
  }
  return {};
}

// A byte-level BPE vocabulary laid out like Llama 3's (pre-tokenizer llama-bpe, specials from
// 128000) or Qwen2's (qwen2, specials from 151643): the 256 byte characters, a handful of English
// merges, unused fillers, then the family's special tokens at their real ids, so chat templates
// and end-of-turn stops behave as with the real vocabulary.
Vocab byte_level_bpe_vocab(Family family, int vocab_size) {
  Vocab v;
  v.model = TokenizerModel::Bpe;
  for (int b = 0; b < 256; ++b) {
    v.tokens.emplace_back(gpt2_byte_char(static_cast<unsigned char>(b)));
    v.types.push_back(TokenType::Normal);
  }
  const std::string space(gpt2_byte_char(' '));
  const std::pair<std::string, std::string> merges[] = {
      {space, "t"}, {"h", "e"}, {space + "t", "he"}, {"i", "n"}, {"e", "r"}, {"a", "n"}, {space, "a"},
      {"o", "n"},   {"r", "e"}, {space, "s"},        {"o", "u"}, {space, "w"}, {"in", "g"}, {space, "o"}};
  for (const auto& [left, right] : merges) {
    v.merges.push_back(left + " " + right);
    v.tokens.push_back(left + right);
    v.types.push_back(TokenType::Normal);
  }
  std::vector<std::string> specials;
  int first_special = 0;
  if (family == Family::Llama3) {
    v.pre = "llama-bpe";
    first_special = 128000;
    specials = {"<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>",
                "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>"};
  } else {
    v.pre = "qwen2";
    first_special = 151643;
    specials = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  }
  first_special = std::min(first_special, vocab_size - static_cast<int>(specials.size()));
  while (static_cast<int>(v.tokens.size()) < first_special) {
    v.tokens.push_back(fmt::format("[unused{}]", v.tokens.size()));
    v.types.push_back(TokenType::Unused);
  }
  for (const std::string& s : specials) {
    v.tokens.push_back(s);
    v.types.push_back(TokenType::Control);
  }
  while (static_cast<int>(v.tokens.size()) < vocab_size) {
    v.tokens.push_back(fmt::format("<|reserved_special_token_{}|>", v.tokens.size()));
    v.types.push_back(TokenType::Control);
  }
  v.scores.assign(v.tokens.size(), 0.0f);
  v.unk = -1;
  if (family == Family::Llama3) {
    v.bos = first_special;            // <|begin_of_text|>
    v.eos = first_special + 9;        // <|eot_id|>, as the Instruct models' GGUF files have it
    v.eot = first_special + 9;
    v.eom = first_special + 8;
    v.add_bos = true;
  } else {
    v.bos = first_special;            // <|endoftext|>, never added
    v.eos = first_special + 2;        // <|im_end|>, as Qwen2.5-Instruct's GGUF files have it
    v.eot = first_special + 2;
    v.add_bos = false;
  }
  v.add_space_prefix = false;
  resolve_special_tokens(v, {});
  return v;
}

// splitmix64: tiny, fast, and good enough for weights nobody reads.
uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Uniform in [-amplitude, amplitude), deterministic for (seed, index) so threads can split rows.
// `out` holds n values of `type` (F32, F16 or BF16).
void fill_uniform(DType type, std::byte* out, int64_t n, uint64_t seed, float amplitude) {
  const unsigned n_threads = std::max(1u, std::min(8u, std::thread::hardware_concurrency()));
  const int64_t chunk = (n + n_threads - 1) / n_threads;
  auto fill_range = [&](int64_t begin, int64_t end) {
    uint64_t state = seed ^ (static_cast<uint64_t>(begin) * 0xd1b54a32d192ed03ull);
    for (int64_t i = begin; i < end; ++i) {
      const float u = static_cast<float>(splitmix64(state) >> 40) * (1.0f / 16777216.0f);  // [0, 1)
      const float x = (2.0f * u - 1.0f) * amplitude;
      switch (type) {
        case DType::F32: reinterpret_cast<float*>(out)[i] = x; break;
        case DType::F16: reinterpret_cast<uint16_t*>(out)[i] = fp32_to_fp16(x); break;
        case DType::BF16: reinterpret_cast<uint16_t*>(out)[i] = fp32_to_bf16(x); break;
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
  const NamedShape& s = find_shape(shape);
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
  switch (s.family) {
    case Family::Llama2: break;
    case Family::Llama3:
      c.rope_freq_base = 500000.0f;
      c.context_length = 8192;
      c.tied_output = true;
      break;
    case Family::Mistral:
      c.rope_freq_base = 1000000.0f;
      c.context_length = 32768;
      break;
    case Family::Qwen2:
      c.arch = Architecture::Qwen2;
      c.rope_neox = true;
      c.rope_freq_base = 1000000.0f;
      c.rms_eps = 1e-6f;
      c.context_length = 8192;
      c.tied_output = true;
      break;
  }
  c.validate();
  return c;
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

LlamaModel make_dummy_model(std::string_view shape, DType type, Backend& backend) {
  if (type != DType::F32 && type != DType::F16 && type != DType::BF16) {
    fail<InvalidArgument>("dummy weights are generated as f32, f16 or bf16, not {}", dtype_name(type));
  }
  const NamedShape& s = find_shape(shape);
  LlamaConfig c = dummy_config(shape);
  LlamaWeights w;
  uint64_t seed = 0x6d6f727068ull;  // fixed: the same shape always has the same weights
  auto matrix = [&](int64_t rows, int64_t cols) {
    // Scaled so each output has about unit variance: activations stay in a sane range in every layer.
    const float amplitude = std::sqrt(3.0f / static_cast<float>(cols));
    const uint64_t matrix_seed = ++seed;
    return WeightMatrix(backend, type, rows, cols, [&](std::byte* host) {
      fill_uniform(type, host, rows * cols, matrix_seed, amplitude);
    });
  };
  // The Llama 2 shapes keep unit norms (their outputs are pinned by older tests); the newer ones
  // get norms in [0.5, 1.5) and small biases so that a mix-up of those vectors changes the logits.
  const bool varied_vectors = s.family != Family::Llama2;
  auto vector = [&](int64_t n, float center, float amplitude) {
    std::vector<float> v(static_cast<size_t>(n));
    fill_uniform(DType::F32, reinterpret_cast<std::byte*>(v.data()), n, ++seed, amplitude);
    for (float& x : v) x += center;
    return v;
  };
  auto norm = [&](int64_t n) {
    return varied_vectors ? vector(n, 1.0f, 0.5f) : std::vector<float>(static_cast<size_t>(n), 1.0f);
  };
  w.token_embd = matrix(c.vocab_size, c.n_embd);
  w.output_norm = norm(c.n_embd);
  if (!c.tied_output) w.output = matrix(c.vocab_size, c.n_embd);
  // Llama 3.2's published scaling (factor 32, low/high frequency factors 1 and 4, context 8192).
  if (s.family == Family::Llama3) w.rope_freqs = llama3_rope_freq_factors({}, c.rope_freq_base, c.rope_dims);
  w.layers.resize(static_cast<size_t>(c.n_layers));
  for (LayerWeights& layer : w.layers) {
    layer.attn_norm = norm(c.n_embd);
    layer.ffn_norm = norm(c.n_embd);
    layer.wq = matrix(c.q_dim(), c.n_embd);
    layer.wk = matrix(c.kv_dim(), c.n_embd);
    layer.wv = matrix(c.kv_dim(), c.n_embd);
    layer.wo = matrix(c.n_embd, c.q_dim());
    layer.w_gate = matrix(c.n_ff, c.n_embd);
    layer.w_up = matrix(c.n_ff, c.n_embd);
    layer.w_down = matrix(c.n_embd, c.n_ff);
    if (s.family == Family::Qwen2) {
      layer.bq = vector(c.q_dim(), 0.0f, 0.2f);
      layer.bk = vector(c.kv_dim(), 0.0f, 0.2f);
      layer.bv = vector(c.kv_dim(), 0.0f, 0.2f);
    }
  }
  const bool sentencepiece = s.family == Family::Llama2 || s.family == Family::Mistral;
  Tokenizer tokenizer(sentencepiece ? byte_level_vocab(c.vocab_size) : byte_level_bpe_vocab(s.family, c.vocab_size));
  LlamaModel model{fmt::format("dummy:{}:{}", shape, dtype_name(type)), std::move(c), std::move(tokenizer),
                   std::move(w)};
  model.chat_template = dummy_chat_template(s.family);
  return model;
}

}  // namespace morphserve
