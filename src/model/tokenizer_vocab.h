#pragma once
// A tokenizer vocabulary as GGUF stores it under tokenizer.ggml.*: SentencePiece ("llama") or
// byte-level BPE ("gpt2").
#include <cstdint>
#include <string>
#include <vector>

namespace morphserve {

class GgufFile;

// Values of tokenizer.ggml.token_type (SentencePiece's piece types, as llama.cpp numbers them).
enum class TokenType : int32_t { Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

// tokenizer.ggml.model: "llama" (SentencePiece) or "gpt2" (byte-level BPE).
enum class TokenizerModel { Spm, Bpe };

struct Vocab {
  TokenizerModel model = TokenizerModel::Spm;
  std::vector<std::string> tokens;  // pieces as stored in GGUF: U+2581 for spaces (SPM), GPT-2 byte characters (BPE)
  std::vector<float> scores;        // SPM merge scores; zeros for BPE, which merges by rank
  std::vector<TokenType> types;
  std::vector<std::string> merges;  // BPE: "left right", highest priority first
  std::string pre;                  // BPE: tokenizer.ggml.pre, "" read as "default"
  int32_t bos = 1, eos = 2, unk = 0;  // -1 when unset
  int32_t eot = -1, eom = -1, pad = -1;
  // Ids that end generation besides eos/eot/eom (llama.cpp's end-of-generation tokens found by
  // text, e.g. <|im_end|>, and the FIM pad/repo/file-separator tokens).
  std::vector<int32_t> end_of_generation;
  bool add_bos = true, add_eos = false, add_space_prefix = true;
};

// Why the vocabulary cannot be used (one sentence), or "" when it can: sizes agree, special ids
// lie inside the vocabulary (or are -1), BOS/EOS exist when they are to be added, and byte
// tokens are spelled <0xNN>.
std::string vocab_problem(const Vocab& vocab);

// Reads tokenizer.ggml.* from a GGUF file. Throws ModelFileError naming the file when
// tokenizer.ggml.model is missing or neither "llama" nor "gpt2", when a BPE vocabulary names a
// pre-tokenizer morphserve does not know or has no merges, when tokens/scores/token_type are
// missing (scores and types are optional for BPE, as in llama.cpp) or disagree in length, or when a
// special token id lies outside the vocabulary. Ids stored as -1 or 0xFFFFFFFF mean "unset";
// absent ids and flags take llama.cpp's defaults for the model (SPM: bos 1, eos 2, unk 0, add_bos;
// BPE: bos = eos = 11, no unk, add_bos only for the Llama-3 pre-tokenizers, no space prefix).
// Then llama.cpp's by-text rules apply (tokenizer_special_tokens.h).
Vocab vocab_from_gguf(const GgufFile& file);

}  // namespace morphserve
