#pragma once
// Incremental Server-Sent Events parsing: bytes arrive in arbitrary pieces (an event may be split
// across reads, or several may come in one), so the parser keeps what it has not yet seen the end
// of and hands out whole events' data as they complete.
#include <functional>
#include <string>
#include <string_view>

namespace morphserve::bench {

class SseParser {
 public:
  // Called with the data of each complete event (several `data:` lines joined by "\n"), e.g.
  // "{...}" or "[DONE]". Comment lines (": keep-alive") and other fields (event:, id:, retry:) are
  // skipped; events without data are not reported.
  using EventFn = std::function<void(std::string_view data)>;

  explicit SseParser(EventFn on_event) : on_event_(std::move(on_event)) {}

  void feed(std::string_view bytes);
  // End of the stream: an event that was not terminated by a blank line is still delivered (some
  // servers omit the last one), and true is returned when there was one.
  bool finish();
  // Bytes received but not yet part of a complete line.
  size_t pending_bytes() const { return line_.size(); }

 private:
  void line(std::string_view text);
  void dispatch();

  EventFn on_event_;
  std::string line_;   // the current, unfinished line
  std::string data_;   // data lines of the current event
  bool has_data_ = false;
  bool after_cr_ = false;  // the last byte was '\r' (a "\r\n" pair must count as one line end)
};

}  // namespace morphserve::bench
