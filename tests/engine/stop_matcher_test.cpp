#include "engine/stop_matcher.h"

#include <gtest/gtest.h>

namespace morphserve {
namespace {

std::string feed(StopMatcher& m, const std::vector<std::string>& pieces, bool* stopped) {
  std::string out;
  *stopped = false;
  for (const std::string& piece : pieces) {
    auto r = m.push(piece);
    out += r.text;
    if (r.stopped) {
      *stopped = true;
      return out;
    }
  }
  return out + m.flush();
}

TEST(StopMatcher, PassesTextThroughWithoutStops) {
  StopMatcher m({});
  bool stopped;
  EXPECT_EQ(feed(m, {"Once", " upon", " a time"}, &stopped), "Once upon a time");
  EXPECT_FALSE(stopped);
}

TEST(StopMatcher, StopsRightBeforeAStopStringSplitAcrossPieces) {
  StopMatcher m({"\n\n", "The end"});
  bool stopped;
  EXPECT_EQ(feed(m, {"She smiled.", "\n", "\nNext"}, &stopped), "She smiled.");
  EXPECT_TRUE(stopped);
  StopMatcher m2({"The end"});
  EXPECT_EQ(feed(m2, {"happy. The", " e", "nd!"}, &stopped), "happy. ");
  EXPECT_TRUE(stopped);
}

TEST(StopMatcher, HoldsBackOnlyWhatCouldStillBecomeAStop) {
  StopMatcher m({"STOP"});
  auto r = m.push("abcST");
  EXPECT_EQ(r.text, "abc");
  r = m.push("x");
  EXPECT_EQ(r.text, "STx");
  EXPECT_FALSE(r.stopped);
  r = m.push("S");
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(m.flush(), "S");
}

TEST(StopMatcher, EarliestStopWins) {
  StopMatcher m({"world", "lo"});
  bool stopped;
  EXPECT_EQ(feed(m, {"hello world"}, &stopped), "hel");
  EXPECT_TRUE(stopped);
}

}  // namespace
}  // namespace morphserve
