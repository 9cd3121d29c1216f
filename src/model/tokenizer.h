#pragma once
// The tokenizer of a GGUF model: SentencePiece ("llama", llama.cpp's llm_tokenizer_spm) or
// byte-level BPE ("gpt2", llm_tokenizer_bpe), matching llama.cpp id for id: text to ids for
// prompts, ids to text for output. Thread-safe: every method is const.
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/text_stream_decoder.h"
#include "model/tokenizer_bpe.h"
#include "model/tokenizer_spm.h"
#include "model/tokenizer_vocab.h"

namespace morphserve {

class Tokenizer {
 public:
  // Throws InvalidArgument with vocab_problem()'s sentence when the vocabulary is unusable.
  explicit Tokenizer(Vocab vocab);

  int32_t vocab_size() const { return static_cast<int32_t>(vocab_.tokens.size()); }
  int32_t bos() const { return vocab_.bos; }
  int32_t eos() const { return vocab_.eos; }
  int32_t unk() const { return vocab_.unk; }
  int32_t eot() const { return vocab_.eot; }
  const Vocab& vocab() const { return vocab_; }
  bool is_bpe() const { return bpe_ != nullptr; }

  // Whether generation stops at this token: eos, eot, eom and the tokens llama.cpp treats as
  // ending generation (vocab.end_of_generation, e.g. <|eot_id|>, <|im_end|>, <|endoftext|>).
  bool is_end_of_generation(int32_t id) const;

  // Id of the piece spelled exactly so as stored (SPM: U+2581 for spaces; BPE: GPT-2 byte
  // characters, U+0120 for a space), or -1.
  int32_t piece_id(std::string_view piece) const;
  TokenType type(int32_t id) const;
  bool is_control(int32_t id) const { return type(id) == TokenType::Control; }

  // add_special: prepend BOS (if vocab.add_bos) / append EOS (if vocab.add_eos).
  // parse_special: control and unknown token texts in the text (e.g. "<s>") become those tokens,
  // as llama.cpp's parse_special does; when false they are plain text. User-defined tokens are
  // always matched whole, as in llama.cpp. SPM: the text after each special token (and at the
  // start) gets the dummy-prefix space when vocab.add_space_prefix; ill-formed UTF-8 is accepted
  // and its bytes become byte tokens. BPE: pre-tokenized and merged (tokenizer_bpe.h); ill-formed
  // UTF-8 reads as U+FFFD, as in llama.cpp.
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special = false) const;

  // Raw bytes of one token: SPM U+2581 -> ' ', BPE GPT-2 byte characters -> their bytes, byte
  // tokens <0xNN> -> that byte, user-defined tokens verbatim; control, unknown, unused and
  // undefined tokens -> "" (llama.cpp's token_to_piece with special = false).
  // Throws InvalidArgument for an id outside the vocabulary.
  std::string token_to_piece(int32_t id) const;

  // Pieces concatenated with special tokens skipped; the leading space of the first piece that
  // produces text is removed when strip_leading_space and vocab.add_space_prefix (undoing the
  // dummy prefix, as llama2.c's run.c and llama.cpp's detokenize do). Pass false for text that
  // continues earlier text, e.g. the generated part of a completion. Ill-formed UTF-8 (such as a
  // lone byte token) becomes U+FFFD, so the result is always valid UTF-8.
  std::string decode(std::span<const int32_t> ids, bool strip_leading_space = true) const;

  // Appends token id's raw bytes (not yet UTF-8 checked) to out, applying the leading-space rule
  // while strip_space is set; clears strip_space once a token produced text. decode() and
  // StreamDecoder share it so that they agree byte for byte.
  void append_raw_piece(std::string& out, int32_t id, bool& strip_space) const;

 private:
  struct Fragment {
    int32_t token;  // -1: text
    size_t offset;
    size_t length;
  };
  std::vector<Fragment> split_on_special_tokens(std::string_view text, bool parse_special) const;
  void check_id(int32_t id) const;

  Vocab vocab_;
  PieceMap pieces_;
  std::shared_ptr<const BpeEncoder> bpe_;  // null for SPM
  JoinablePairs joinable_;                 // SPM only
  std::vector<std::string> decoded_;      // token_to_piece for every id
  std::vector<int32_t> special_tokens_;  // control, user-defined, unknown; longest text first
  std::array<int32_t, 256> byte_tokens_{};
  std::vector<int32_t> end_of_generation_;  // sorted
};

}  // namespace morphserve
