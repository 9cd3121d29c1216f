#pragma once
// Headless Chromium driven over the DevTools protocol, for tests of pages the server serves
// (GET /dashboard). The protocol runs over `--remote-debugging-pipe`: Chromium reads commands from
// its fd 3 and writes replies and events to its fd 4, each message one JSON text ended by '\0'.
// That needs no WebSocket client and no port. Every wait is bounded; the destructor always reaps.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "child_process.h"

extern char** environ;

namespace morphserve::testing {

// The browser binary: $MORPHSERVE_CHROMIUM, else the first of Debian's `chromium` and the usual
// other names on PATH; empty when there is none.
inline std::string find_chromium() {
  if (const char* env = std::getenv("MORPHSERVE_CHROMIUM"); env && *env) return env;
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  for (const char* name : {"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}) {
    size_t start = 0;
    while (start <= dirs.size()) {
      const size_t end = std::min(dirs.find(':', start), dirs.size());
      const std::filesystem::path candidate = std::filesystem::path(dirs.substr(start, end - start)) / name;
      if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
      start = end + 1;
    }
  }
  return {};
}

inline std::string base64_decode(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  uint32_t bits = 0;
  int n = 0;
  for (char c : text) {
    const int v = value(c);
    if (v < 0) continue;  // '=' padding, line breaks
    bits = (bits << 6) | static_cast<uint32_t>(v);
    n += 6;
    if (n >= 8) {
      n -= 8;
      out.push_back(static_cast<char>((bits >> n) & 0xFF));
    }
  }
  return out;
}

class HeadlessChromium {
 public:
  // Starts the browser; throws when it cannot be started.
  explicit HeadlessChromium(const std::string& binary, int width = 1280, int height = 1000) {
    static int counter = 0;
    profile_ = std::filesystem::path(::testing::TempDir()) /
               ("chromium-profile-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(profile_);
    std::filesystem::create_directories(profile_);
    log_ = profile_.string() + ".log";

    int to_browser[2], from_browser[2];
    if (::pipe2(to_browser, O_CLOEXEC) != 0 || ::pipe2(from_browser, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    // Out of the way of 3 and 4, so that dup2 onto them always makes a fresh, inheritable fd.
    const int child_in = ::fcntl(to_browser[0], F_DUPFD_CLOEXEC, 100);
    const int child_out = ::fcntl(from_browser[1], F_DUPFD_CLOEXEC, 100);
    ::close(to_browser[0]);
    ::close(from_browser[1]);
    to_browser_ = to_browser[1];
    from_browser_ = from_browser[0];

    std::vector<std::string> args = {binary,
                                     "--headless",
                                     "--no-sandbox",  // tests may run as root, where the sandbox refuses to start
                                     "--disable-gpu",
                                     "--no-first-run",
                                     "--no-default-browser-check",
                                     "--disable-extensions",
                                     "--disable-dev-shm-usage",
                                     "--disable-background-networking",
                                     // The page's 1 s timer must keep its pace in a window nobody sees.
                                     "--disable-background-timer-throttling",
                                     "--disable-renderer-backgrounding",
                                     "--disable-backgrounding-occluded-windows",
                                     "--remote-debugging-pipe",
                                     "--user-data-dir=" + profile_.string(),
                                     "--window-size=" + std::to_string(width) + "," + std::to_string(height),
                                     "about:blank"};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawn_file_actions_adddup2(&actions, child_in, 3);
    posix_spawn_file_actions_adddup2(&actions, child_out, 4);
    // Its own process group, so the renderers and helpers it forks go with it at the end.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    // A browser that dies makes writes to its pipe fail (EPIPE) instead of killing the test.
    ::signal(SIGPIPE, SIG_IGN);
    const int rc = ::posix_spawn(&pid_, argv[0], &actions, &attr, argv.data(), environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
    ::close(child_in);
    ::close(child_out);
    if (rc != 0) {
      pid_ = -1;
      throw std::runtime_error("cannot start " + binary + ": " + std::strerror(rc));
    }
    reader_ = std::thread([this] { read_messages(); });
  }

  ~HeadlessChromium() {
    if (pid_ > 0) {
      try {
        send("Browser.close", nlohmann::json::object(), {}, std::chrono::seconds(5));
      } catch (const std::exception&) {
        // Killed below.
      }
      const pid_t group = pid_;
      if (!reap(std::chrono::seconds(10))) {
        ::kill(pid_, SIGKILL);
        reap(std::chrono::seconds(10));
      }
      ::kill(-group, SIGKILL);  // whatever of its helpers outlived it
    }
    stop_ = true;
    ::close(to_browser_);
    if (reader_.joinable()) reader_.join();
    ::close(from_browser_);
    std::error_code ignored;
    std::filesystem::remove_all(profile_, ignored);
  }

  HeadlessChromium(const HeadlessChromium&) = delete;
  HeadlessChromium& operator=(const HeadlessChromium&) = delete;

  // Opens `url` in a new tab; the tab's session id, for evaluate() and screenshot().
  std::string open(const std::string& url) {
    const nlohmann::json target = send("Target.createTarget", {{"url", url}});
    const nlohmann::json attached =
        send("Target.attachToTarget", {{"targetId", target.at("targetId")}, {"flatten", true}});
    return attached.at("sessionId").get<std::string>();
  }

  // Evaluates a JavaScript expression in the tab and returns its value (by value, as JSON); a
  // thrown exception becomes std::runtime_error.
  nlohmann::json evaluate(const std::string& session, const std::string& expression) {
    const nlohmann::json r = send("Runtime.evaluate", {{"expression", expression}, {"returnByValue", true}}, session);
    if (r.contains("exceptionDetails")) throw std::runtime_error("page script failed: " + r["exceptionDetails"].dump());
    const nlohmann::json& result = r.at("result");
    return result.contains("value") ? result["value"] : nlohmann::json();
  }

  // The tab as a PNG.
  std::string screenshot(const std::string& session) {
    const nlohmann::json r = send("Page.captureScreenshot", {{"format", "png"}}, session);
    return base64_decode(r.at("data").get<std::string>());
  }

  // What the browser printed, for failure messages.
  std::string log_text() const {
    std::ifstream in(log_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  // Sends one command and waits for its reply's `result`; an `error` reply or no reply in time
  // throws std::runtime_error.
  nlohmann::json send(const std::string& method, const nlohmann::json& params, const std::string& session = {},
                      std::chrono::seconds timeout = std::chrono::seconds(30)) {
    std::unique_lock lock(mutex_);
    const int id = next_id_++;
    nlohmann::json message = {{"id", id}, {"method", method}, {"params", params}};
    if (!session.empty()) message["sessionId"] = session;
    std::string text = message.dump();
    text.push_back('\0');
    lock.unlock();
    for (size_t written = 0; written < text.size();) {
      const ssize_t n = ::write(to_browser_, text.data() + written, text.size() - written);
      if (n <= 0) throw std::runtime_error("the browser's command pipe is closed (" + method + ")");
      written += static_cast<size_t>(n);
    }
    lock.lock();
    if (!replied_.wait_for(lock, timeout, [&] { return replies_.count(id) > 0 || closed_; })) {
      throw std::runtime_error("no reply from the browser to " + method);
    }
    if (!replies_.count(id)) throw std::runtime_error("the browser exited before it replied to " + method);
    nlohmann::json reply = std::move(replies_[id]);
    replies_.erase(id);
    if (reply.contains("error")) throw std::runtime_error(method + " failed: " + reply["error"].dump());
    return reply.value("result", nlohmann::json::object());
  }

 private:
  void read_messages() {
    std::string pending;
    char buffer[65536];
    while (!stop_) {
      // Polled, so that a helper process still holding the pipe open cannot keep this thread.
      pollfd p{from_browser_, POLLIN, 0};
      if (::poll(&p, 1, 100) == 0) continue;
      const ssize_t n = ::read(from_browser_, buffer, sizeof(buffer));
      if (n <= 0) break;
      pending.append(buffer, static_cast<size_t>(n));
      for (size_t end; (end = pending.find('\0')) != std::string::npos; pending.erase(0, end + 1)) {
        nlohmann::json message = nlohmann::json::parse(pending.substr(0, end), nullptr, false);
        if (message.is_discarded() || !message.contains("id") || !message["id"].is_number_integer()) continue;  // events
        std::lock_guard lock(mutex_);
        const int id = message["id"].get<int>();
        replies_[id] = std::move(message);
        replied_.notify_all();
      }
    }
    std::lock_guard lock(mutex_);
    closed_ = true;
    replied_.notify_all();
  }

  bool reap(std::chrono::milliseconds timeout) {
    if (!wait_for_child(pid_, timeout)) return false;
    pid_ = -1;
    return true;
  }

  pid_t pid_ = -1;
  int to_browser_ = -1;
  int from_browser_ = -1;
  std::filesystem::path profile_;
  std::string log_;
  std::thread reader_;
  std::mutex mutex_;
  std::condition_variable replied_;
  std::map<int, nlohmann::json> replies_;
  int next_id_ = 1;
  bool closed_ = false;
  std::atomic<bool> stop_{false};
};

}  // namespace morphserve::testing
