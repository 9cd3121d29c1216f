#pragma once
// Worker threads that grow with demand: a task submitted while every worker is busy gets a new
// thread at once, so no request ever waits for another's connection (a fixed pool would queue the
// (N+1)th stream behind the first N and under-report the load). Idle workers are reused.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace morphserve::bench {

class GrowingPool {
 public:
  GrowingPool() = default;
  ~GrowingPool();  // waits for every submitted task, then joins the workers
  GrowingPool(const GrowingPool&) = delete;
  GrowingPool& operator=(const GrowingPool&) = delete;

  void submit(std::function<void()> task);
  // Blocks until every submitted task has finished.
  void wait_idle();
  // Threads started so far (the most tasks that ran at once, at least).
  size_t threads() const;

 private:
  void work();

  mutable std::mutex mutex_;
  std::condition_variable has_task_;
  std::condition_variable idle_;
  std::deque<std::function<void()>> tasks_;
  std::vector<std::thread> workers_;
  size_t waiting_workers_ = 0;
  size_t running_ = 0;
  bool stopping_ = false;
};

}  // namespace morphserve::bench
