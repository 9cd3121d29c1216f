// Holds back only the bytes of a character that later bytes could still complete; everything
// before them is final, so each chunk is sanitised once and never revised.
#include "model/text_stream_decoder.h"

#include "model/tokenizer.h"
#include "model/utf8.h"

namespace morphserve {

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool strip_leading_space)
    : tokenizer_(&tokenizer), strip_pending_(strip_leading_space && tokenizer.vocab().add_space_prefix) {}

std::string StreamDecoder::push(int32_t id) {
  tokenizer_->append_raw_piece(pending_, id, strip_pending_);
  const size_t held = utf8_incomplete_tail(pending_);
  const std::string_view ready = std::string_view(pending_).substr(0, pending_.size() - held);
  std::string out = sanitize_utf8(ready);
  pending_.erase(0, ready.size());
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = sanitize_utf8(pending_);
  pending_.clear();
  return out;
}

}  // namespace morphserve
