#pragma once
// Detokenizer for streaming generation: ids go in one at a time, and only complete, valid UTF-8
// comes out, so a character whose bytes arrive as several byte tokens is never sent in halves.
#include <cstdint>
#include <string>

namespace morphserve {

class Tokenizer;

class StreamDecoder {
 public:
  // The tokenizer must outlive the decoder. strip_leading_space as in Tokenizer::decode(): the
  // concatenation of every push() and the final flush() equals decode(all ids, same flag).
  explicit StreamDecoder(const Tokenizer& tokenizer, bool strip_leading_space = true);

  // Text that became complete with this token (often the token's own piece, sometimes "" while
  // a multi-byte character is still incomplete). Ill-formed bytes come out as U+FFFD.
  std::string push(int32_t id);
  // Whatever is still held back (an unfinished character, as U+FFFD). Call it at the end of the
  // stream; pushes after it continue the same text (the leading space is not stripped again).
  std::string flush();

 private:
  const Tokenizer* tokenizer_;
  bool strip_pending_;  // the first text-producing piece has not come yet
  std::string pending_;  // raw bytes not yet emitted
};

}  // namespace morphserve
