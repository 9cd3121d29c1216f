// Writes the seed corpus of fuzz_gguf: small GGUF files from our own writer, and prefixes of them
// cut where the reader changes what it reads (inside the header, the metadata, the tensor infos,
// the data). The output is committed under fuzz/corpus/fuzz_gguf; rerun after a format change:
//   build-fuzz/fuzz/make_gguf_seeds fuzz/corpus/fuzz_gguf
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/dtype.h"
#include "core/error.h"
#include "model/dummy_model.h"
#include "model/gguf_file.h"
#include "model/gguf_writer.h"

namespace morphserve::fuzz {
namespace {

namespace fs = std::filesystem;

GgufValue strings(const std::vector<std::string>& items) {
  GgufValue::Array elements;
  for (const std::string& s : items) elements.push_back(GgufValue::string(s));
  return GgufValue::array(GgufType::STRING, std::move(elements));
}

GgufValue i32s(const std::vector<int32_t>& items) {
  GgufValue::Array elements;
  for (const int32_t v : items) elements.push_back(GgufValue::i32(v));
  return GgufValue::array(GgufType::INT32, std::move(elements));
}

GgufValue f32s(size_t n) { return GgufValue::array(GgufType::FLOAT32, GgufValue::Array(n, GgufValue::f32(-1.0f))); }

void set_tokenizer(GgufWriter& writer, const Vocab& vocab) {
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
}

void add_f32(GgufWriter& writer, const std::string& name, std::vector<int64_t> dims) {
  int64_t n = 1;
  for (const int64_t d : dims) n *= d;
  std::vector<float> values(static_cast<size_t>(n));
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 7) * 0.125f - 0.375f;
  writer.add_tensor(name, std::move(dims), DType::F32, values.data(), values.size() * sizeof(float));
}

// A complete llama model that load_llama_gguf accepts: one layer, width 8, two heads sharing one
// KV head, the dummy model's byte-level vocabulary (260 tokens), tied output, a chat template.
void write_tiny_llama(const std::string& path) {
  constexpr int64_t kEmbd = 8, kFf = 16, kHeads = 2, kKvHeads = 1, kHeadDim = 4, kVocab = 260;
  GgufWriter writer;
  writer.set("general.architecture", GgufValue::string("llama"));
  writer.set("general.name", GgufValue::string("fuzz-tiny"));
  writer.set("llama.block_count", GgufValue::u32(1));
  writer.set("llama.embedding_length", GgufValue::u32(kEmbd));
  writer.set("llama.feed_forward_length", GgufValue::u32(kFf));
  writer.set("llama.attention.head_count", GgufValue::u32(kHeads));
  writer.set("llama.attention.head_count_kv", GgufValue::u32(kKvHeads));
  writer.set("llama.rope.dimension_count", GgufValue::u32(kHeadDim));
  writer.set("llama.context_length", GgufValue::u32(64));
  writer.set("llama.attention.layer_norm_rms_epsilon", GgufValue::f32(1e-5f));
  set_tokenizer(writer, byte_level_vocab(kVocab));
  writer.set("tokenizer.ggml.bos_token_id", GgufValue::u32(1));
  writer.set("tokenizer.ggml.eos_token_id", GgufValue::u32(2));
  writer.set("tokenizer.chat_template", GgufValue::string("{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
                                                          "{{ m['content'] }}<|im_end|>\n{% endfor %}"));
  add_f32(writer, "token_embd.weight", {kEmbd, kVocab});
  add_f32(writer, "output_norm.weight", {kEmbd});
  add_f32(writer, "blk.0.attn_norm.weight", {kEmbd});
  add_f32(writer, "blk.0.ffn_norm.weight", {kEmbd});
  add_f32(writer, "blk.0.attn_q.weight", {kEmbd, kHeads * kHeadDim});
  add_f32(writer, "blk.0.attn_k.weight", {kEmbd, kKvHeads * kHeadDim});
  add_f32(writer, "blk.0.attn_v.weight", {kEmbd, kKvHeads * kHeadDim});
  add_f32(writer, "blk.0.attn_output.weight", {kHeads * kHeadDim, kEmbd});
  add_f32(writer, "blk.0.ffn_gate.weight", {kEmbd, kFf});
  add_f32(writer, "blk.0.ffn_up.weight", {kEmbd, kFf});
  add_f32(writer, "blk.0.ffn_down.weight", {kFf, kEmbd});
  writer.write(path);
}

// Every metadata value type (nested arrays too) and every tensor type, at alignment 64.
void write_every_type(const std::string& path) {
  GgufWriter writer(64);
  writer.set("general.architecture", GgufValue::string("fuzz"));
  writer.set("test.u8", GgufValue::u8(200));
  writer.set("test.i8", GgufValue::i8(-100));
  writer.set("test.u16", GgufValue::u16(60000));
  writer.set("test.i16", GgufValue::i16(-30000));
  writer.set("test.u32", GgufValue::u32(4000000000u));
  writer.set("test.i32", GgufValue::i32(-2000000000));
  writer.set("test.f32", GgufValue::f32(3.25f));
  writer.set("test.bool", GgufValue::boolean(true));
  writer.set("test.string", GgufValue::string("h\xC3\xA9llo"));
  writer.set("test.u64", GgufValue::u64(UINT64_MAX));
  writer.set("test.i64", GgufValue::i64(INT64_MIN));
  writer.set("test.f64", GgufValue::f64(-1.5e300));
  writer.set("test.u8_array", GgufValue::array(GgufType::UINT8, {GgufValue::u8(0), GgufValue::u8(255)}));
  writer.set("test.string_array", strings({"a", "", "<0x0A>"}));
  writer.set("test.nested", GgufValue::array(GgufType::ARRAY, {strings({"x", "yy"}), i32s({1, -2}), i32s({})}));
  const std::vector<std::byte> zeros(256);
  writer.add_tensor("f32", {4}, DType::F32, zeros.data(), 16);
  writer.add_tensor("f16", {2, 3}, DType::F16, zeros.data(), 12);
  writer.add_tensor("bf16", {2, 1, 1, 2}, DType::BF16, zeros.data(), 8);
  writer.add_tensor("q8_0", {32, 2}, DType::Q8_0, zeros.data(), 68);
  writer.add_tensor("q4_0", {64}, DType::Q4_0, zeros.data(), 36);
  writer.write(path);
}

// Tokenizer metadata only (no tensors), with llama.cpp's "unset" ids and non-default flags.
void write_vocab_only(const std::string& path) {
  GgufWriter writer;
  writer.set("general.architecture", GgufValue::string("llama"));
  writer.set("tokenizer.ggml.model", GgufValue::string("llama"));
  writer.set("tokenizer.ggml.tokens",
             strings({"<unk>", "<s>", "</s>", "\xE2\x96\x81", "<0x41>", "ab", "<|im_start|>"}));
  writer.set("tokenizer.ggml.scores", f32s(7));
  writer.set("tokenizer.ggml.token_type", i32s({2, 3, 3, 1, 6, 1, 4}));
  writer.set("tokenizer.ggml.bos_token_id", GgufValue::u32(1));
  writer.set("tokenizer.ggml.eos_token_id", GgufValue::i32(-1));
  writer.set("tokenizer.ggml.unknown_token_id", GgufValue::u32(UINT32_MAX));
  writer.set("tokenizer.ggml.add_bos_token", GgufValue::boolean(true));
  writer.set("tokenizer.ggml.add_eos_token", GgufValue::boolean(false));
  writer.set("tokenizer.ggml.add_space_prefix", GgufValue::boolean(false));
  writer.write(path);
}

// The optional llama keys: GQA, explicit head sizes, rope base and linear scaling, a vocab_size
// without token arrays, and no tensors at all.
void write_llama_config_only(const std::string& path) {
  GgufWriter writer;
  writer.set("general.architecture", GgufValue::string("llama"));
  writer.set("llama.block_count", GgufValue::u32(2));
  writer.set("llama.embedding_length", GgufValue::u32(64));
  writer.set("llama.feed_forward_length", GgufValue::u32(172));
  writer.set("llama.attention.head_count", GgufValue::u32(8));
  writer.set("llama.attention.head_count_kv", GgufValue::u32(4));
  writer.set("llama.attention.key_length", GgufValue::u32(8));
  writer.set("llama.attention.value_length", GgufValue::u32(8));
  writer.set("llama.rope.dimension_count", GgufValue::u32(8));
  writer.set("llama.rope.freq_base", GgufValue::f32(500000.0f));
  writer.set("llama.rope.scaling.type", GgufValue::string("linear"));
  writer.set("llama.rope.scaling.factor", GgufValue::f32(4.0f));
  writer.set("llama.context_length", GgufValue::u64(8192));
  writer.set("llama.vocab_size", GgufValue::u32(512));
  writer.write(path);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out.good()) fail<Error>("cannot write {}", path.string());
}

// Prefixes that end inside the header, inside the metadata, one byte short of the tensor infos'
// end, and one byte short of the whole file.
void write_prefixes(const fs::path& dir, const std::string& name) {
  const std::string bytes = read_file((dir / name).string());
  const GgufFile file = GgufFile::open((dir / name).string());
  const size_t infos_end = file.tensors().empty() ? bytes.size() : static_cast<size_t>(file.data_offset());
  for (const size_t cut : {size_t{12}, bytes.size() / 3, infos_end - 1, bytes.size() - 1}) {
    if (cut == 0 || cut >= bytes.size()) continue;
    write_file(dir / fmt::format("{}.prefix{}", name, cut), std::string_view(bytes).substr(0, cut));
  }
}

}  // namespace
}  // namespace morphserve::fuzz

int main(int argc, char** argv) {
  using namespace morphserve::fuzz;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
    return 2;
  }
  try {
    const fs::path dir = argv[1];
    fs::create_directories(dir);
    write_tiny_llama((dir / "tiny_llama.gguf").string());
    write_every_type((dir / "every_type.gguf").string());
    write_vocab_only((dir / "vocab_only.gguf").string());
    write_llama_config_only((dir / "llama_config_only.gguf").string());
    // Version 2 has the same layout; only the version field differs.
    std::string v2 = read_file((dir / "every_type.gguf").string());
    v2[4] = 2;
    write_file(dir / "every_type_v2.gguf", v2);
    write_prefixes(dir, "tiny_llama.gguf");
    write_prefixes(dir, "every_type.gguf");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_gguf_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
