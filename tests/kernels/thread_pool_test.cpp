#include "kernels/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

namespace morphserve {
namespace {

TEST(ThreadPool, SizeDefaultsToCores) {
  ThreadPool pool;
  EXPECT_GE(pool.size(), 1);
  ThreadPool three(3);
  EXPECT_EQ(three.size(), 3);
}

TEST(ThreadPool, RunCallsEveryThreadIndexOnce) {
  for (int n : {1, 2, 3, 5}) {
    ThreadPool pool(n);
    std::vector<std::atomic<int>> calls(static_cast<size_t>(n));
    std::atomic<int> bad_count{0};
    pool.run([&](int index, int n_threads) {
      if (n_threads != n) bad_count.fetch_add(1);
      calls[static_cast<size_t>(index)].fetch_add(1);
    });
    EXPECT_EQ(bad_count.load(), 0);
    for (auto& c : calls) EXPECT_EQ(c.load(), 1);
  }
}

TEST(ThreadPool, CallerIsThreadZero) {
  ThreadPool pool(2);
  const auto caller = std::this_thread::get_id();
  std::thread::id zero;
  pool.run([&](int index, int) {
    if (index == 0) zero = std::this_thread::get_id();
  });
  EXPECT_EQ(zero, caller);
}

TEST(ThreadPool, ParallelForVisitsEveryIndexOnce) {
  for (int n_threads : {1, 2, 3, 4}) {
    ThreadPool pool(n_threads);
    for (int64_t n : {0, 1, 2, 3, 7, 64, 1000, 4097}) {
      for (int64_t grain : {1, 3, 16, 5000}) {
        std::vector<std::atomic<int>> seen(static_cast<size_t>(n));
        pool.parallel_for(n, grain, [&](int64_t begin, int64_t end) {
          ASSERT_LE(0, begin);
          ASSERT_LE(begin, end);
          ASSERT_LE(end, n);
          for (int64_t i = begin; i < end; ++i) seen[static_cast<size_t>(i)].fetch_add(1);
        });
        for (int64_t i = 0; i < n; ++i) {
          ASSERT_EQ(seen[static_cast<size_t>(i)].load(), 1) << "n=" << n << " grain=" << grain << " i=" << i;
        }
      }
    }
  }
}

TEST(ThreadPool, ParallelForRespectsGrain) {
  ThreadPool pool(4);
  std::atomic<int> chunks{0};
  pool.parallel_for(10, 6, [&](int64_t begin, int64_t end) {
    chunks.fetch_add(1);
    EXPECT_GE(end - begin, 5);  // 10 items, grain 6: at most 2 chunks, split evenly
  });
  EXPECT_LE(chunks.load(), 2);
}

TEST(ThreadPool, ManyTinyRunsComplete) {
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  constexpr int kRuns = 20000;
  for (int i = 0; i < kRuns; ++i) {
    pool.run([&](int index, int) { total.fetch_add(index + 1, std::memory_order_relaxed); });
  }
  EXPECT_EQ(total.load(), int64_t{kRuns} * 3);
}

TEST(ThreadPool, WakesWorkersAfterTheySlept) {
  ThreadPool pool(3);
  for (int round = 0; round < 3; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // past the spin window
    std::atomic<int> calls{0};
    pool.run([&](int, int) { calls.fetch_add(1); });
    EXPECT_EQ(calls.load(), 3);
  }
}

// Exceptions thrown by fn on any thread reach the caller (the first one wins); the pool stays usable.
TEST(ThreadPool, PropagatesTheFirstException) {
  ThreadPool pool(3);
  EXPECT_THROW(pool.run([](int index, int) {
    if (index == 2) throw std::runtime_error("worker failed");
  }),
               std::runtime_error);
  EXPECT_THROW(pool.run([](int index, int) {
    if (index == 0) throw std::invalid_argument("caller failed");
  }),
               std::invalid_argument);
  EXPECT_THROW(pool.parallel_for(100, 1, [](int64_t begin, int64_t) {
    if (begin > 0) throw std::runtime_error("chunk failed");
  }),
               std::runtime_error);
  std::atomic<int> calls{0};
  pool.run([&](int, int) { calls.fetch_add(1); });
  EXPECT_EQ(calls.load(), 3);
}

TEST(ThreadPool, DestroysWhileWorkersSleepOrSpin) {
  for (int i = 0; i < 50; ++i) {
    ThreadPool pool(2);
    if (i % 2) pool.run([](int, int) {});
  }
  ThreadPool sleeping(2);
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

}  // namespace
}  // namespace morphserve
