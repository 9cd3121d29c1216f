#include "bench/shaping.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace morphserve::bench {
namespace {

// One request a second for `n` seconds, prompt = 100 + i, output = 10 + i.
Workload uniform(size_t n) {
  Workload w;
  w.source = "test";
  for (size_t i = 0; i < n; ++i)
    w.requests.push_back({static_cast<double>(i), 100 + static_cast<int64_t>(i), 10 + static_cast<int64_t>(i)});
  return w;
}

TEST(Shaping, DefaultsChangeNothing) {
  const Workload in = uniform(10);
  const Workload out = shape(in, {});
  ASSERT_EQ(out.requests.size(), 10u);
  for (size_t i = 0; i < 10; ++i) {
    EXPECT_EQ(out.requests[i].arrival_seconds, in.requests[i].arrival_seconds);
    EXPECT_EQ(out.requests[i].prompt_tokens, in.requests[i].prompt_tokens);
    EXPECT_EQ(out.requests[i].output_tokens, in.requests[i].output_tokens);
  }
  EXPECT_EQ(out.source, "test");
}

TEST(Shaping, WindowKeepsAHalfOpenIntervalRebasedToItsStart) {
  Shaping s;
  s.window_start = 10;
  s.window_length = 5;
  const Workload out = shape(uniform(100), s);
  ASSERT_EQ(out.requests.size(), 5u);  // 10, 11, 12, 13, 14
  EXPECT_EQ(out.requests.front().arrival_seconds, 0.0);
  EXPECT_EQ(out.requests.front().prompt_tokens, 110);
  EXPECT_EQ(out.requests.back().arrival_seconds, 4.0);
  EXPECT_NE(out.source.find("window=10:5"), std::string::npos);
  s.window_length = 0;  // to the end
  EXPECT_EQ(shape(uniform(100), s).requests.size(), 90u);
}

TEST(Shaping, TimeScaleStretchesGaps) {
  Shaping s;
  s.time_scale = 2;  // half the rate
  const Workload out = shape(uniform(10), s);
  ASSERT_EQ(out.requests.size(), 10u);
  EXPECT_EQ(out.requests[3].arrival_seconds, 6.0);
  // The window applies to the source trace's times, before scaling.
  s.window_start = 4;
  s.window_length = 4;
  const Workload windowed = shape(uniform(10), s);
  ASSERT_EQ(windowed.requests.size(), 4u);
  EXPECT_EQ(windowed.requests.back().arrival_seconds, 6.0);
}

TEST(Shaping, RateScaleBelowOneThinsDeterministically) {
  Shaping s;
  s.rate_scale = 0.5;
  s.seed = 42;
  const Workload a = shape(uniform(10000), s);
  EXPECT_NEAR(static_cast<double>(a.requests.size()), 5000, 4 * 50);  // 4 sigma of Binomial(10000, .5)
  const Workload b = shape(uniform(10000), s);
  ASSERT_EQ(a.requests.size(), b.requests.size());
  for (size_t i = 0; i < a.requests.size(); ++i) EXPECT_EQ(a.requests[i].prompt_tokens, b.requests[i].prompt_tokens);
  s.seed = 43;
  const Workload c = shape(uniform(10000), s);
  bool differ = c.requests.size() != a.requests.size();
  for (size_t i = 0; !differ && i < a.requests.size(); ++i) differ = a.requests[i].prompt_tokens != c.requests[i].prompt_tokens;
  EXPECT_TRUE(differ);
}

TEST(Shaping, RateScaleTwoDoublesExactlyWithJitteredRepeats) {
  Shaping s;
  s.rate_scale = 2.0;
  const Workload out = shape(uniform(100), s);
  ASSERT_EQ(out.requests.size(), 200u);
  for (size_t i = 1; i < out.requests.size(); ++i)
    EXPECT_LE(out.requests[i - 1].arrival_seconds, out.requests[i].arrival_seconds);
  for (size_t i = 0; i < 100; ++i) {
    // Each original and its repeat, within the jitter.
    EXPECT_EQ(out.requests[2 * i].arrival_seconds, static_cast<double>(i));
    EXPECT_EQ(out.requests[2 * i + 1].prompt_tokens, 100 + static_cast<int64_t>(i));
    EXPECT_GE(out.requests[2 * i + 1].arrival_seconds, static_cast<double>(i));
    EXPECT_LE(out.requests[2 * i + 1].arrival_seconds, static_cast<double>(i) + s.repeat_jitter_seconds);
  }
  s.rate_scale = 2.5;
  EXPECT_NEAR(static_cast<double>(shape(uniform(10000), s).requests.size()), 25000, 4 * 50);
}

TEST(Shaping, LengthsScaleThenCapThenFloor) {
  Workload in;
  in.requests = {{0, 1000, 100}, {1, 10, 1}, {2, 0, 0}};
  Shaping s;
  s.prompt_scale = 0.5;
  s.output_scale = 2;
  s.max_prompt = 300;
  s.max_output = 150;
  s.min_output = 4;
  const Workload out = shape(in, s);
  ASSERT_EQ(out.requests.size(), 3u);
  EXPECT_EQ(out.requests[0].prompt_tokens, 300);  // 500 capped
  EXPECT_EQ(out.requests[0].output_tokens, 150);  // 200 capped
  EXPECT_EQ(out.requests[1].prompt_tokens, 5);
  EXPECT_EQ(out.requests[1].output_tokens, 4);  // 2 raised to the floor
  EXPECT_EQ(out.requests[2].prompt_tokens, 1);  // never zero
  EXPECT_EQ(out.requests[2].output_tokens, 4);
}

TEST(Shaping, MaxRequestsKeepsTheFirst) {
  Shaping s;
  s.max_requests = 3;
  s.time_scale = 0.5;
  const Workload out = shape(uniform(10), s);
  ASSERT_EQ(out.requests.size(), 3u);
  EXPECT_EQ(out.requests.back().arrival_seconds, 1.0);
}

TEST(Shaping, RejectsBadSettings) {
  auto with = [](auto edit) {
    Shaping s;
    edit(s);
    return s;
  };
  const Workload w = uniform(3);
  EXPECT_THROW(shape(w, with([](Shaping& s) { s.time_scale = -1; })), InvalidArgument);
  EXPECT_THROW(shape(w, with([](Shaping& s) { s.time_scale = 0; })), InvalidArgument);
  EXPECT_THROW(shape(w, with([](Shaping& s) { s.rate_scale = -0.5; })), InvalidArgument);
  EXPECT_THROW(shape(w, with([](Shaping& s) { s.prompt_scale = -2; })), InvalidArgument);
  EXPECT_THROW(shape(w, with([](Shaping& s) { s.output_scale = NAN; })), InvalidArgument);
  EXPECT_THROW(shape(w, with([](Shaping& s) { s.window_start = -1; })), InvalidArgument);
  EXPECT_THROW(shape(w, with([](Shaping& s) { s.window_length = -1; })), InvalidArgument);
  EXPECT_THROW(shape(w, with([](Shaping& s) { s.max_prompt = 10, s.min_prompt = 20; })), InvalidArgument);
  EXPECT_THROW(shape(w, with([](Shaping& s) { s.max_requests = -1; })), InvalidArgument);
}

TEST(Shaping, ParsesWindows) {
  Window w = parse_window("0:72");
  EXPECT_EQ(w.start, 0.0);
  EXPECT_EQ(w.length, 72.0);
  w = parse_window("10m:90s");
  EXPECT_EQ(w.start, 600.0);
  EXPECT_EQ(w.length, 90.0);
  w = parse_window("30:");
  EXPECT_EQ(w.start, 30.0);
  EXPECT_EQ(w.length, 0.0);
  for (const char* bad : {"72", ":", "a:b", "-1:5", "1:-5", ""}) EXPECT_THROW(parse_window(bad), InvalidArgument) << bad;
}

}  // namespace
}  // namespace morphserve::bench
