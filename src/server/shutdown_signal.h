#pragma once
// SIGINT/SIGTERM as an event the server can wait for. The signals are blocked in every thread
// (construct this before any thread starts, so they all inherit the mask) and received by one
// watcher thread with sigtimedwait, so no code runs in a signal handler. A second signal while
// shutting down exits at once.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include <signal.h>

namespace morphserve::server {

class ShutdownSignal {
 public:
  // on_first_signal runs on the watcher thread when the first signal arrives.
  explicit ShutdownSignal(std::function<void(int)> on_first_signal);
  ~ShutdownSignal();
  ShutdownSignal(const ShutdownSignal&) = delete;
  ShutdownSignal& operator=(const ShutdownSignal&) = delete;

  bool received() const { return received_.load(); }
  // True when a signal arrived before the timeout.
  bool wait(std::chrono::milliseconds timeout);
  void wait();

 private:
  void watch();

  std::function<void(int)> on_first_signal_;
  sigset_t set_{};
  sigset_t old_mask_{};
  std::atomic<bool> received_{false};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable cv_;
  std::thread thread_;
};

}  // namespace morphserve::server
