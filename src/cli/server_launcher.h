#pragma once
// Starts `morphserve serve` as a child process for `experiment`: a fresh server per arm, so no
// arm inherits another's warm state. Its stderr (the start-up plan, morphing actions) goes to a
// log file; the port comes from its "listening on" line. The destructor always stops and reaps it.
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace morphserve::cli {

class ServerLauncher {
 public:
  // `serve --port 0 ARGS`, run by `binary`. Throws InvalidArgument with the log's tail when the
  // server exits or does not report its port, or /health does not answer 200 within the timeout.
  ServerLauncher(const std::string& binary, const std::vector<std::string>& args, const std::string& log_path,
                 std::chrono::seconds start_timeout);
  ~ServerLauncher();
  ServerLauncher(const ServerLauncher&) = delete;
  ServerLauncher& operator=(const ServerLauncher&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // SIGTERM (the server drains and exits), then SIGKILL after the timeout. Returns the exit code,
  // or nullopt when it had to be killed.
  std::optional<int> stop(std::chrono::seconds timeout);

 private:
  void read_stderr(int fd, const std::string& log_path);
  bool reap(std::chrono::milliseconds timeout);
  std::string log_tail() const;

  pid_t pid_ = -1;
  int port_ = 0;
  std::optional<int> exit_code_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::string head_;  // stderr until the port is known, and the last few KiB after
  bool eof_ = false;
  std::thread reader_;
};

// This program's own path, to start servers of the same build.
std::string self_executable();

}  // namespace morphserve::cli
