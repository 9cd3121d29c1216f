#include "bench/growing_pool.h"

namespace morphserve::bench {

GrowingPool::~GrowingPool() {
  wait_idle();
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  has_task_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void GrowingPool::submit(std::function<void()> task) {
  std::lock_guard lock(mutex_);
  tasks_.push_back(std::move(task));
  // Tasks already queued will take the waiting workers first; start a thread when none is left.
  if (tasks_.size() > waiting_workers_) {
    workers_.emplace_back([this] { work(); });
  } else {
    has_task_.notify_one();
  }
}

void GrowingPool::wait_idle() {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [&] { return tasks_.empty() && running_ == 0; });
}

size_t GrowingPool::threads() const {
  std::lock_guard lock(mutex_);
  return workers_.size();
}

void GrowingPool::work() {
  std::unique_lock lock(mutex_);
  for (;;) {
    ++waiting_workers_;
    has_task_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
    --waiting_workers_;
    if (tasks_.empty()) return;  // stopping, nothing left
    std::function<void()> task = std::move(tasks_.front());
    tasks_.pop_front();
    ++running_;
    lock.unlock();
    task();
    lock.lock();
    --running_;
    if (tasks_.empty() && running_ == 0) idle_.notify_all();
  }
}

}  // namespace morphserve::bench
