#pragma once
// CpuBackend's copy thread: copies run here, overlapped with the engine's forward passes,
// so that no iteration waits on a copy (DESIGN.md §4). The engine thread only polls the results
// at iteration boundaries.
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

namespace morphserve {

class CopyWorker {
 public:
  CopyWorker();
  // Finishes the queued copies, then joins.
  ~CopyWorker();
  CopyWorker(const CopyWorker&) = delete;
  CopyWorker& operator=(const CopyWorker&) = delete;

  // Queues a job; the future becomes ready when it has run (and carries its exception).
  std::future<void> submit(std::function<void()> job);

 private:
  void run();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::packaged_task<void()>> jobs_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace morphserve
