#include "server/shutdown_signal.h"

#include <pthread.h>

#include <csignal>

#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace morphserve::server {

ShutdownSignal::ShutdownSignal(std::function<void(int)> on_first_signal) : on_first_signal_(std::move(on_first_signal)) {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set_, &old_mask_);
  // A client that vanishes mid-write must cost one failed write, never the process.
  std::signal(SIGPIPE, SIG_IGN);
  thread_ = std::thread([this] { watch(); });
}

ShutdownSignal::~ShutdownSignal() {
  stop_.store(true);
  thread_.join();
  pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
}

void ShutdownSignal::watch() {
  const timespec tick{0, 100'000'000};  // how often to look at stop_
  while (!stop_.load()) {
    siginfo_t info{};
    const int sig = sigtimedwait(&set_, &info, &tick);
    if (sig <= 0) continue;
    if (received_.exchange(true)) {
      std::fprintf(stderr, "morphserve: second signal, exiting now\n");
      std::_Exit(1);
    }
    if (on_first_signal_) on_first_signal_(sig);
    {
      std::lock_guard lock(mutex_);  // pairs with wait(): no lost wake-up
    }
    cv_.notify_all();
  }
}

bool ShutdownSignal::wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return cv_.wait_for(lock, timeout, [&] { return received_.load(); });
}

void ShutdownSignal::wait() {
  std::unique_lock lock(mutex_);
  cv_.wait(lock, [&] { return received_.load(); });
}

}  // namespace morphserve::server
