// Loading and checking a vocabulary. Defaults follow llama.cpp's loader for tokenizer.ggml.model
// "llama" (SentencePiece) and "gpt2" (byte-level BPE), so a GGUF tokenizes here as it does there.
#include "model/tokenizer_vocab.h"

#include <cctype>
#include <limits>
#include <string_view>

#include "core/error.h"
#include "model/gguf_file.h"
#include "model/tokenizer_pretokenize.h"
#include "model/tokenizer_special_tokens.h"

namespace morphserve {

namespace {

bool is_byte_token_text(std::string_view text) {
  return text.size() == 6 && text.substr(0, 3) == "<0x" && text[5] == '>' &&
         std::isxdigit(static_cast<unsigned char>(text[3])) && std::isxdigit(static_cast<unsigned char>(text[4]));
}

std::string special_id_problem(const Vocab& vocab, std::string_view name, int32_t id) {
  const auto n = static_cast<int64_t>(vocab.tokens.size());
  if (id < -1 || id >= n) return fmt::format("the {} token id {} is outside the vocabulary of {} tokens", name, id, n);
  return {};
}

const GgufValue::Array& required_array(const GgufFile& file, std::string_view key, GgufType element_type) {
  const GgufValue* value = file.find(key);
  if (value == nullptr) fail<ModelFileError>("{} has no {} array, so its tokenizer cannot be loaded", file.path(), key);
  if (value->type() != GgufType::ARRAY || value->element_type() != element_type) {
    fail<ModelFileError>("{}: {} should be an array of {}, but it is {} {}", file.path(), key, gguf_type_name(element_type),
                         value->type() == GgufType::ARRAY ? "an array of" : "a",
                         gguf_type_name(value->type() == GgufType::ARRAY ? value->element_type() : value->type()));
  }
  return value->as_array();
}

// Converters write "unset" as -1 or as its uint32 bit pattern; any other value must be an id.
int32_t special_id(const GgufFile& file, std::string_view key, int32_t fallback, size_t vocab_size) {
  const GgufValue* value = file.find(key);
  if (value == nullptr) return fallback < static_cast<int64_t>(vocab_size) ? fallback : -1;
  if (!value->is_integer()) {
    fail<ModelFileError>("{}: {} should be an integer token id, but it is a {}", file.path(), key, gguf_type_name(value->type()));
  }
  const bool is_signed = value->type() == GgufType::INT8 || value->type() == GgufType::INT16 ||
                         value->type() == GgufType::INT32 || value->type() == GgufType::INT64;
  if (is_signed && value->as_int() < 0) return -1;
  const uint64_t id = value->as_uint();
  if (id == std::numeric_limits<uint32_t>::max() || id == std::numeric_limits<uint64_t>::max()) return -1;
  if (id >= vocab_size) {
    fail<ModelFileError>("{}: {} is {}, outside the vocabulary of {} tokens", file.path(), key, id, vocab_size);
  }
  return static_cast<int32_t>(id);
}

}  // namespace

std::string vocab_problem(const Vocab& vocab) {
  const size_t n = vocab.tokens.size();
  if (n == 0) return "the vocabulary has no tokens";
  if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max())) return fmt::format("the vocabulary has {} tokens, too many for 32-bit ids", n);
  if (vocab.scores.size() != n) return fmt::format("the vocabulary has {} tokens but {} scores", n, vocab.scores.size());
  if (vocab.types.size() != n) return fmt::format("the vocabulary has {} tokens but {} token types", n, vocab.types.size());
  for (const auto& [name, id] : {std::pair<std::string_view, int32_t>{"BOS", vocab.bos}, {"EOS", vocab.eos}, {"unknown", vocab.unk}}) {
    if (std::string problem = special_id_problem(vocab, name, id); !problem.empty()) return problem;
  }
  if (vocab.add_bos && vocab.bos < 0) return "the vocabulary asks for a BOS token to be added but has none";
  if (vocab.add_eos && vocab.eos < 0) return "the vocabulary asks for an EOS token to be added but has none";
  for (const auto& [name, id] : {std::pair<std::string_view, int32_t>{"end-of-turn", vocab.eot}, {"end-of-message", vocab.eom}, {"padding", vocab.pad}}) {
    if (std::string problem = special_id_problem(vocab, name, id); !problem.empty()) return problem;
  }
  for (const int32_t id : vocab.end_of_generation) {
    if (std::string problem = special_id_problem(vocab, "end-of-generation", id); !problem.empty() || id < 0) {
      return problem.empty() ? "an end-of-generation token id is -1" : problem;
    }
  }
  if (vocab.model == TokenizerModel::Bpe && find_pre_tokenizer(vocab.pre) == nullptr) {
    return fmt::format("the BPE pre-tokenizer '{}' is not supported (supported: {})", vocab.pre, supported_pre_tokenizer_names());
  }
  for (size_t i = 0; i < n; ++i) {
    const auto type = static_cast<int32_t>(vocab.types[i]);
    if (type < 0 || type > static_cast<int32_t>(TokenType::Byte)) return fmt::format("token {} has unknown type {}", i, type);
    if (vocab.types[i] == TokenType::Byte && !is_byte_token_text(vocab.tokens[i])) {
      return fmt::format("token {} is a byte token but is spelled '{}' instead of <0xNN>", i, vocab.tokens[i]);
    }
  }
  return {};
}

Vocab vocab_from_gguf(const GgufFile& file) {
  const std::optional<std::string> model = file.get_string_opt("tokenizer.ggml.model");
  if (!model) {
    fail<ModelFileError>("{} has no tokenizer.ggml.model key, so it carries no tokenizer morphserve can use "
                         "(supported: SentencePiece 'llama' and byte-level BPE 'gpt2')", file.path());
  }
  if (*model != "llama" && *model != "gpt2") {
    fail<ModelFileError>("{} uses the '{}' tokenizer; morphserve supports SentencePiece 'llama' and byte-level BPE 'gpt2' tokenizers",
                         file.path(), *model);
  }
  const bool bpe = *model == "gpt2";

  Vocab vocab;
  vocab.model = bpe ? TokenizerModel::Bpe : TokenizerModel::Spm;
  const PreTokenizerSpec* pre = nullptr;
  if (bpe) {
    vocab.pre = file.get_string_opt("tokenizer.ggml.pre").value_or("");
    pre = find_pre_tokenizer(vocab.pre);
    if (pre == nullptr) {
      fail<ModelFileError>("{} uses the BPE pre-tokenizer '{}', which morphserve does not support (supported: {})",
                           file.path(), vocab.pre, supported_pre_tokenizer_names());
    }
  }

  const auto& tokens = required_array(file, "tokenizer.ggml.tokens", GgufType::STRING);
  const size_t n = tokens.size();
  if (n == 0) fail<ModelFileError>("{}: tokenizer.ggml.tokens is empty", file.path());
  // BPE vocabularies may leave out scores (they merge by rank) and types (all normal), as
  // llama.cpp allows; SentencePiece ones need both.
  const GgufValue::Array* scores = nullptr;
  const GgufValue::Array* types = nullptr;
  if (!bpe || file.find("tokenizer.ggml.scores") != nullptr) scores = &required_array(file, "tokenizer.ggml.scores", GgufType::FLOAT32);
  if (!bpe || file.find("tokenizer.ggml.token_type") != nullptr) types = &required_array(file, "tokenizer.ggml.token_type", GgufType::INT32);
  if ((scores != nullptr && scores->size() != n) || (types != nullptr && types->size() != n)) {
    fail<ModelFileError>("{}: the tokenizer arrays disagree in length ({} tokens, {} scores, {} token types)", file.path(),
                         n, scores != nullptr ? scores->size() : n, types != nullptr ? types->size() : n);
  }

  vocab.tokens.reserve(n);
  vocab.scores.reserve(n);
  vocab.types.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    vocab.tokens.push_back(tokens[i].as_string());
    vocab.scores.push_back(scores != nullptr ? static_cast<float>((*scores)[i].as_float()) : 0.0f);
    const int64_t type = types != nullptr ? (*types)[i].as_int() : static_cast<int64_t>(TokenType::Normal);
    if (type < 0 || type > static_cast<int64_t>(TokenType::Byte)) {
      fail<ModelFileError>("{}: token {} ('{}') has unknown token type {}", file.path(), i, vocab.tokens[i], type);
    }
    vocab.types.push_back(static_cast<TokenType>(type));
  }
  if (bpe) {
    const auto& merges = required_array(file, "tokenizer.ggml.merges", GgufType::STRING);
    vocab.merges.reserve(merges.size());
    for (const GgufValue& merge : merges) vocab.merges.push_back(merge.as_string());
  }

  vocab.bos = special_id(file, "tokenizer.ggml.bos_token_id", bpe ? 11 : 1, n);
  vocab.eos = special_id(file, "tokenizer.ggml.eos_token_id", bpe ? 11 : 2, n);
  vocab.unk = special_id(file, "tokenizer.ggml.unknown_token_id", bpe ? -1 : 0, n);
  vocab.eot = special_id(file, "tokenizer.ggml.eot_token_id", -1, n);
  vocab.eom = special_id(file, "tokenizer.ggml.eom_token_id", -1, n);
  vocab.pad = special_id(file, "tokenizer.ggml.padding_token_id", -1, n);
  FimIds fim;
  fim.pre = special_id(file, "tokenizer.ggml.fim_pre_token_id", -1, n);
  fim.suf = special_id(file, "tokenizer.ggml.fim_suf_token_id", -1, n);
  fim.mid = special_id(file, "tokenizer.ggml.fim_mid_token_id", -1, n);
  fim.pad = special_id(file, "tokenizer.ggml.fim_pad_token_id", -1, n);
  fim.rep = special_id(file, "tokenizer.ggml.fim_rep_token_id", -1, n);
  fim.sep = special_id(file, "tokenizer.ggml.fim_sep_token_id", -1, n);
  vocab.add_bos = file.get_bool_opt("tokenizer.ggml.add_bos_token").value_or(bpe ? pre->add_bos : true);
  vocab.add_eos = file.get_bool_opt("tokenizer.ggml.add_eos_token").value_or(false);
  vocab.add_space_prefix = file.get_bool_opt("tokenizer.ggml.add_space_prefix").value_or(!bpe);
  resolve_special_tokens(vocab, fim);

  if (std::string problem = vocab_problem(vocab); !problem.empty()) {
    fail<ModelFileError>("{}: unusable tokenizer: {}", file.path(), problem);
  }
  return vocab;
}

}  // namespace morphserve
