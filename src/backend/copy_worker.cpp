#include "backend/copy_worker.h"

namespace morphserve {

CopyWorker::CopyWorker() : thread_([this] { run(); }) {}

CopyWorker::~CopyWorker() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::future<void> CopyWorker::submit(std::function<void()> job) {
  std::packaged_task<void()> task(std::move(job));
  std::future<void> done = task.get_future();
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back(std::move(task));
  }
  wake_.notify_one();
  return done;
}

void CopyWorker::run() {
  while (true) {
    std::packaged_task<void()> task;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, and everything queued has run
      task = std::move(jobs_.front());
      jobs_.pop_front();
    }
    task();  // an exception lands in the future
  }
}

}  // namespace morphserve
