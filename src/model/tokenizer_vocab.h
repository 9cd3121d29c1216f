#pragma once
// A SentencePiece ("llama") vocabulary as GGUF stores it under tokenizer.ggml.*.
#include <cstdint>
#include <string>
#include <vector>

namespace morphserve {

class GgufFile;

// Values of tokenizer.ggml.token_type (SentencePiece's piece types, as llama.cpp numbers them).
enum class TokenType : int32_t { Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

struct Vocab {
  std::vector<std::string> tokens;  // pieces, with U+2581 for spaces as stored in GGUF
  std::vector<float> scores;
  std::vector<TokenType> types;
  int32_t bos = 1, eos = 2, unk = 0;  // -1 when unset
  bool add_bos = true, add_eos = false, add_space_prefix = true;
};

// Why the vocabulary cannot be used (one sentence), or "" when it can: sizes agree, special ids
// lie inside the vocabulary (or are -1), BOS/EOS exist when they are to be added, and byte
// tokens are spelled <0xNN>.
std::string vocab_problem(const Vocab& vocab);

// Reads tokenizer.ggml.* from a GGUF file. Throws ModelFileError naming the file when
// tokenizer.ggml.model is missing or not "llama", when tokens/scores/token_type are missing or
// disagree in length, or when a special token id lies outside the vocabulary. Ids stored as -1 or
// 0xFFFFFFFF mean "unset"; absent ids and flags take llama.cpp's defaults for SentencePiece.
Vocab vocab_from_gguf(const GgufFile& file);

}  // namespace morphserve
