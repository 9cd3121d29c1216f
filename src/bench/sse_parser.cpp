#include "bench/sse_parser.h"

namespace morphserve::bench {

void SseParser::feed(std::string_view bytes) {
  // Lines end with "\n", "\r\n" or "\r" (the SSE grammar); a "\r\n" may be split across reads.
  for (char c : bytes) {
    if (after_cr_) {
      after_cr_ = false;
      if (c == '\n') continue;
    }
    if (c == '\n' || c == '\r') {
      after_cr_ = c == '\r';
      std::string text = std::move(line_);
      line_.clear();
      line(text);
    } else {
      line_ += c;
    }
  }
}

bool SseParser::finish() {
  if (!line_.empty()) {
    std::string text = std::move(line_);
    line_.clear();
    line(text);
  }
  const bool had = has_data_;
  dispatch();
  return had;
}

void SseParser::line(std::string_view text) {
  if (text.empty()) {
    dispatch();
    return;
  }
  if (text.front() == ':') return;  // comment, e.g. ": keep-alive"
  const size_t colon = text.find(':');
  const std::string_view field = text.substr(0, colon);
  std::string_view value = colon == std::string_view::npos ? std::string_view() : text.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (field != "data") return;
  if (has_data_) data_ += '\n';
  data_.append(value);
  has_data_ = true;
}

void SseParser::dispatch() {
  if (!has_data_) return;
  std::string data = std::move(data_);
  data_.clear();
  has_data_ = false;
  on_event_(data);
}

}  // namespace morphserve::bench
