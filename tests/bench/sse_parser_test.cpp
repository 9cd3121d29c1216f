#include "bench/sse_parser.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace morphserve::bench {
namespace {

std::vector<std::string> parse_in_pieces(const std::string& text, size_t piece, bool finish = true) {
  std::vector<std::string> events;
  SseParser parser([&](std::string_view data) { events.emplace_back(data); });
  for (size_t pos = 0; pos < text.size(); pos += piece) parser.feed(std::string_view(text).substr(pos, piece));
  if (finish) parser.finish();
  return events;
}

TEST(SseParser, SplitsEventsAtBlankLines) {
  const auto events = parse_in_pieces("data: {\"a\":1}\n\ndata: [DONE]\n\n", 1000);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0], "{\"a\":1}");
  EXPECT_EQ(events[1], "[DONE]");
}

TEST(SseParser, SameEventsWhateverTheReadBoundaries) {
  const std::string text = ": keep-alive\n\ndata: {\"x\":\"a b\"}\r\n\r\nevent: message\nid: 7\ndata:{\"y\":2}\n\n"
                           "data: one\ndata: two\n\ndata: [DONE]\n\n";
  const std::vector<std::string> expected = {"{\"x\":\"a b\"}", "{\"y\":2}", "one\ntwo", "[DONE]"};
  for (size_t piece = 1; piece <= text.size(); ++piece) {
    EXPECT_EQ(parse_in_pieces(text, piece), expected) << "pieces of " << piece;
  }
}

TEST(SseParser, CommentsAndEmptyEventsAreNotReported) {
  EXPECT_TRUE(parse_in_pieces(": ping\n\n\n\n: keep-alive\n\nretry: 10\n\n", 3).empty());
}

TEST(SseParser, FinishDeliversAnUnterminatedLastEvent) {
  std::vector<std::string> events;
  SseParser parser([&](std::string_view data) { events.emplace_back(data); });
  parser.feed("data: [DONE]");
  EXPECT_TRUE(events.empty());
  EXPECT_GT(parser.pending_bytes(), 0u);
  EXPECT_TRUE(parser.finish());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0], "[DONE]");
  EXPECT_FALSE(parser.finish());
}

TEST(SseParser, CarriageReturnsAloneEndLines) {
  EXPECT_EQ(parse_in_pieces("data: a\r\rdata: b\r\r", 2), (std::vector<std::string>{"a", "b"}));
}

}  // namespace
}  // namespace morphserve::bench
