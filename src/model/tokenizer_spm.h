#pragma once
// The SentencePiece BPE merge loop used for one run of plain text (no special tokens inside).
#include <array>
#include <bitset>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "model/tokenizer_piece_map.h"

namespace morphserve {

// Pairs of adjacent characters that occur inside some piece. No merge can ever join two
// characters that form no such pair, so the text splits there into runs that merge on their own:
// the result is the same as merging the whole text at once (within a run the merge order is
// unchanged), but each run's queue stays small and in cache.
class JoinablePairs {
 public:
  void add_piece(std::string_view piece);
  bool contains(uint32_t left, uint32_t right) const {
    if (left < kDense && right < kDense) return dense_[left * kDense + right];
    return other_.count((static_cast<uint64_t>(left) << 32) | right) != 0;
  }
  // A character's key: ASCII as itself, U+2581 (the escaped space, in most pairs) as 128, any
  // other character as its bytes packed into an integer (1..4 bytes, so no two collide).
  static uint32_t key(std::string_view character) {
    if (character.size() == 1 && static_cast<unsigned char>(character[0]) < 128) return static_cast<unsigned char>(character[0]);
    if (character == "\xE2\x96\x81") return 128;
    uint32_t packed = 0;
    for (const char c : character) packed = (packed << 8) | static_cast<unsigned char>(c);
    return packed;
  }

 private:
  static constexpr uint32_t kDense = 129;
  void insert(uint32_t left, uint32_t right);

  std::bitset<kDense * kDense> dense_;
  std::unordered_set<uint64_t> other_;
};

// Splits text into symbols: well-formed UTF-8 characters, and single bytes where it is not.
size_t spm_symbol_length(std::string_view text, size_t pos);

struct SpmTables {
  const PieceMap& pieces;
  const JoinablePairs& joinable;
  std::span<const float> scores;
  // Token of each byte, for characters that are not pieces: its <0xNN> token, else a one-byte
  // piece, else -1.
  const std::array<int32_t, 256>& byte_tokens;
  // Stands for a character when some byte of it has no token; -1 when the vocabulary has none.
  int32_t unk;
};

// Tokenizes text that is already escaped (spaces as U+2581, dummy prefix added) and appends the
// ids to out. Starts from single characters and repeatedly merges the adjacent pair whose
// concatenation is the highest-scoring piece (leftmost first on ties), exactly as llama.cpp's
// llm_tokenizer_spm does; a character left over that is not a piece becomes its byte tokens, or
// one unknown token when the vocabulary lacks one of those bytes (llama.cpp gives up there).
// Bytes that are not well-formed UTF-8 are characters of their own. Throws InvalidArgument when
// a character can be represented neither way.
void spm_tokenize(std::string_view text, const SpmTables& tables, std::vector<int32_t>& out);

}  // namespace morphserve
