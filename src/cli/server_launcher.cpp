#include "cli/server_launcher.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <regex>

#include <fmt/ranges.h>
#include <httplib.h>

#include "core/error.h"

extern char** environ;

namespace morphserve::cli {

using namespace std::chrono_literals;

std::string self_executable() {
  std::error_code ec;
  const auto path = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) fail<InvalidArgument>("cannot find this program's path: {}", ec.message());
  return path.string();
}

ServerLauncher::ServerLauncher(const std::string& binary, const std::vector<std::string>& args,
                               const std::string& log_path, std::chrono::seconds start_timeout) {
  std::vector<std::string> argv_text = {binary, "serve", "--port", "0"};
  argv_text.insert(argv_text.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_text) argv.push_back(a.data());
  argv.push_back(nullptr);

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) fail<InvalidArgument>("cannot create a pipe for the server's log");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  const int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    pid_ = -1;
    fail<InvalidArgument>("cannot start {}", binary);
  }
  reader_ = std::thread([this, fd = fds[0], log_path] { read_stderr(fd, log_path); });

  static const std::regex kListening(R"(listening on http://[^:\s]+:(\d+))");
  {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, start_timeout, [&] { return std::regex_search(head_, kListening) || eof_; });
    std::smatch m;
    if (std::regex_search(head_, m, kListening)) port_ = std::stoi(m[1]);
  }
  auto give_up = [&](const std::string& why) {
    const std::string tail = log_tail();
    stop(5s);
    fail<InvalidArgument>("the server ({}) {}; its log ends:\n{}", fmt::join(args, " "), why, tail);
  };
  if (port_ == 0) give_up("did not start listening");
  httplib::Client client("127.0.0.1", port_);
  client.set_connection_timeout(2s);
  const auto deadline = std::chrono::steady_clock::now() + start_timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto r = client.Get("/health"); r && r->status == 200) return;
    {
      std::lock_guard lock(mutex_);
      if (eof_) break;
    }
    std::this_thread::sleep_for(50ms);
  }
  give_up("never became ready");
}

ServerLauncher::~ServerLauncher() { stop(20s); }

void ServerLauncher::read_stderr(int fd, const std::string& log_path) {
  std::FILE* log = log_path.empty() ? nullptr : std::fopen(log_path.c_str(), "w");
  char buffer[4096];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n <= 0) break;
    if (log) {
      std::fwrite(buffer, 1, static_cast<size_t>(n), log);
      std::fflush(log);
    }
    std::lock_guard lock(mutex_);
    head_.append(buffer, static_cast<size_t>(n));
    // Keep the start (for the port) only until the port is known, then just a tail for errors.
    if (port_ != 0 && head_.size() > 16384) head_.erase(0, head_.size() - 8192);
    changed_.notify_all();
  }
  ::close(fd);
  if (log) std::fclose(log);
  std::lock_guard lock(mutex_);
  eof_ = true;
  changed_.notify_all();
}

std::string ServerLauncher::log_tail() const {
  std::lock_guard lock(mutex_);
  return head_.size() > 2000 ? head_.substr(head_.size() - 2000) : head_;
}

bool ServerLauncher::reap(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      if (WIFEXITED(status)) exit_code_ = WEXITSTATUS(status);
      pid_ = -1;
      return true;
    }
    if (r < 0 || std::chrono::steady_clock::now() >= deadline) return r < 0;
    std::this_thread::sleep_for(20ms);
  }
}

std::optional<int> ServerLauncher::stop(std::chrono::seconds timeout) {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    if (!reap(timeout)) {
      ::kill(pid_, SIGKILL);
      reap(5s);
      exit_code_.reset();
    }
  }
  if (reader_.joinable()) reader_.join();
  return exit_code_;
}

}  // namespace morphserve::cli
