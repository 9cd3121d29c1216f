#pragma once
// Byte-level BPE (GPT-2 style, tokenizer.ggml.model "gpt2") for one run of plain text, matching
// llama.cpp's llm_tokenizer_bpe_session id for id: pre-tokenize into words, spell each word's
// bytes with GPT-2's byte-to-unicode characters, merge adjacent symbols by merge rank.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "model/tokenizer_piece_map.h"
#include "model/tokenizer_pretokenize.h"

namespace morphserve {

struct Vocab;

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes for
// U+0100.. in byte order. The UTF-8 of byte's character.
std::string_view gpt2_byte_char(unsigned char byte);
// The bytes a byte-level token's text stands for (the inverse map, character by character). A
// character outside the table is kept as it is (llama.cpp prints an [UNK_BYTE_...] marker).
std::string gpt2_token_bytes(std::string_view text);

class BpeEncoder {
 public:
  // Reads vocab.merges ("left right", rank = position; the first of duplicates wins) and the
  // pre-tokenizer of vocab.pre. Throws InvalidArgument for an unknown pre-tokenizer name.
  explicit BpeEncoder(const Vocab& vocab);

  // Appends the ids of text (no special tokens inside) to out. pieces: token text -> id.
  // A final symbol that is no token becomes the tokens of its single bytes that are tokens, and
  // is dropped where none is, as in llama.cpp.
  void encode(std::string_view text, const PieceMap& pieces, std::vector<int32_t>& out) const;

  // Rank of merging left and right, or -1.
  int32_t rank(std::string_view left, std::string_view right, std::string& scratch) const;

 private:
  PieceMap ranks_;  // "left right" -> rank
  PreTokenizer pre_;
  bool ignore_merges_;
};

}  // namespace morphserve
