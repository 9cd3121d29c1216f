#pragma once
// Waiting for a child process the tests started (a server, a browser), always bounded.
#include <sys/types.h>
#include <sys/wait.h>

#include <chrono>
#include <optional>
#include <thread>

namespace morphserve::testing {

// Polls until child `pid` has exited or `timeout` passes. nullopt while it still runs; otherwise
// its waitpid status, or -1 when there is no such child left to wait for.
inline std::optional<int> wait_for_child(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return std::nullopt;
}

}  // namespace morphserve::testing
