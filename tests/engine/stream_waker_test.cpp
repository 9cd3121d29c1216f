// StreamWaker: one waiter woken by updates on any of several streams, never by polling.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>

#include "engine/request_stream.h"

namespace morphserve {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(StreamWaker, APushOnAnyAttachedStreamWakesTheWaiterAtOnce) {
  auto waker = std::make_shared<StreamWaker>();
  RequestStream a(1), b(2);
  a.set_waker(waker);
  b.set_waker(waker);
  const uint64_t seen = waker->count();
  std::thread producer([&] {
    std::this_thread::sleep_for(50ms);
    b.push(RequestOutput{});
  });
  const auto start = Clock::now();
  EXPECT_TRUE(waker->wait_past(seen, start + 20s));
  EXPECT_LT(Clock::now() - start, 10s) << "woken by the push, not by the deadline";
  producer.join();
  RequestOutput out;
  EXPECT_FALSE(a.next(out, Clock::time_point::min()));
  EXPECT_TRUE(b.next(out, Clock::time_point::min()));
}

TEST(StreamWaker, TimesOutWhenNothingIsPushedAndCountsPushesBeforeTheWait) {
  auto waker = std::make_shared<StreamWaker>();
  RequestStream s(1);
  s.set_waker(waker);
  const uint64_t seen = waker->count();
  EXPECT_FALSE(waker->wait_past(seen, Clock::now() + 30ms));
  s.push(RequestOutput{});  // pushed after `seen` was read, before the wait: still wakes it
  EXPECT_TRUE(waker->wait_past(seen, Clock::now() + 20s));
  RequestOutput last;
  last.finish = FinishReason::Stop;
  s.push(std::move(last));
  s.push(RequestOutput{});  // after the final update: dropped, no wake-up
  const uint64_t after = waker->count();
  EXPECT_EQ(after, seen + 2);
}

}  // namespace
}  // namespace morphserve
