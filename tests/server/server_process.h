#pragma once
// Runs `morphserve serve` as a child process on a free loopback port, the way a user starts it,
// and talks to it over HTTP. Every wait is bounded, and the destructor always reaps the child.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "child_process.h"
#include "test_data.h"

extern char** environ;

namespace morphserve::testing {

using namespace std::chrono_literals;

class ServerProcess {
 public:
  // Starts `morphserve serve --port 0 <args>` and waits (bounded) for its "listening on" line.
  // `extra_env` ("NAME=value") is added to the child's environment.
  explicit ServerProcess(const std::vector<std::string>& args, std::chrono::seconds start_timeout = 60s,
                         const std::vector<std::string>& extra_env = {}) {
    std::vector<std::string> argv_text = {morphserve_binary(), "serve", "--port", "0"};
    argv_text.insert(argv_text.end(), args.begin(), args.end());
    start(std::move(argv_text), start_timeout, extra_env);
  }

  // Another HTTP server program (llama.cpp's llama-server for the side-by-side tests): argv in
  // full, started the same way and ready once stderr says "listening on http://HOST:PORT".
  struct Program {
    std::vector<std::string> argv;
  };
  ServerProcess(Program program, std::chrono::seconds start_timeout, const std::vector<std::string>& extra_env) {
    start(std::move(program.argv), start_timeout, extra_env);
  }

  ~ServerProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      if (!reap(20s)) kill_now();
    }
    if (reader_.joinable()) reader_.join();
  }

  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }

  // The server's resident memory (VmRSS) in bytes, or 0 when it cannot be read.
  size_t rss_bytes() const {
    std::FILE* f = std::fopen(("/proc/" + std::to_string(pid_) + "/status").c_str(), "r");
    if (!f) return 0;
    char line[256];
    size_t kib = 0;
    while (std::fgets(line, sizeof(line), f)) {
      if (std::sscanf(line, "VmRSS: %zu kB", &kib) == 1) break;
    }
    std::fclose(f);
    return kib * 1024;
  }

  std::unique_ptr<httplib::Client> client(std::chrono::seconds read_timeout = 60s) const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", port_);
    c->set_connection_timeout(5s);
    c->set_read_timeout(read_timeout);
    c->set_write_timeout(10s);
    return c;
  }

  // Polls /health until it answers 200 (true) or the timeout passes.
  bool wait_ready(std::chrono::seconds timeout = 60s) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    auto c = client(5s);
    while (std::chrono::steady_clock::now() < deadline) {
      if (auto r = c->Get("/health"); r && r->status == 200) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  void signal(int sig) const { ::kill(pid_, sig); }

  // Sends SIGTERM and waits; the exit code, or nullopt when it had to be killed (or died of a signal).
  std::optional<int> terminate(std::chrono::seconds timeout = 20s) {
    if (pid_ <= 0) return exit_code_;
    ::kill(pid_, SIGTERM);
    if (!reap(timeout)) kill_now();
    return exit_code_;
  }

  // Waits for the child to exit by itself.
  std::optional<int> wait_exit(std::chrono::seconds timeout) {
    if (pid_ > 0 && !reap(timeout)) kill_now();
    return exit_code_;
  }

  std::string stderr_text() const {
    std::lock_guard lock(mutex_);
    return stderr_;
  }

 private:
  void start(std::vector<std::string> argv_text, std::chrono::seconds start_timeout,
             const std::vector<std::string>& extra_env) {
    std::vector<char*> argv;
    for (std::string& a : argv_text) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_text = extra_env;
    std::vector<char*> env;
    for (std::string& e : env_text) env.push_back(e.data());
    for (char** e = environ; *e; ++e) env.push_back(*e);
    env.push_back(nullptr);

    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    const int rc = posix_spawn(&pid_, argv[0], &actions, &attr, argv.data(), env.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    ::close(fds[1]);
    if (rc != 0) {
      ::close(fds[0]);
      throw std::runtime_error("cannot start " + argv_text[0]);
    }
    reader_ = std::thread([this, fd = fds[0]] { read_stderr(fd); });

    static const std::regex kListening(R"(listening on http://[^:\s]+:(\d+))");
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, start_timeout, [&] { return std::regex_search(stderr_, kListening) || eof_; });
    std::smatch m;
    if (!std::regex_search(stderr_, m, kListening)) {
      const std::string text = stderr_;
      lock.unlock();
      kill_now();
      reader_.join();  // the destructor does not run for an object whose constructor throws
      throw std::runtime_error(argv_text[0] + " did not start listening; stderr:\n" + text);
    }
    port_ = std::stoi(m[1]);
  }

  void read_stderr(int fd) {
    char buffer[4096];
    for (;;) {
      const ssize_t n = ::read(fd, buffer, sizeof buffer);
      if (n <= 0) break;
      std::lock_guard lock(mutex_);
      stderr_.append(buffer, static_cast<size_t>(n));
      changed_.notify_all();
    }
    ::close(fd);
    std::lock_guard lock(mutex_);
    eof_ = true;
    changed_.notify_all();
  }

  bool reap(std::chrono::milliseconds timeout) {
    const std::optional<int> status = wait_for_child(pid_, timeout);
    if (!status || *status < 0) return false;  // still running, or not ours to wait for: kill_now
    if (WIFEXITED(*status)) exit_code_ = WEXITSTATUS(*status);
    pid_ = -1;
    return true;
  }

  void kill_now() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    exit_code_.reset();
  }

  pid_t pid_ = -1;
  int port_ = 0;
  std::optional<int> exit_code_;
  std::thread reader_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::string stderr_;
  bool eof_ = false;
};

// The "data:" payloads of an SSE body, in order ("[DONE]" included); comment lines are skipped.
inline std::vector<std::string> sse_payloads(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) end = body.size();
    const std::string event = body.substr(pos, end - pos);
    if (event.rfind("data: ", 0) == 0) out.push_back(event.substr(6));
    pos = end + 2;
  }
  return out;
}

// Whether a whole `data:` event has arrived: a slow server may send keep-alive comments first.
inline bool has_sse_data_event(const std::string& so_far) {
  const size_t last_end = so_far.rfind("\n\n");
  return last_end != std::string::npos && !sse_payloads(so_far.substr(0, last_end + 2)).empty();
}

// POSTs JSON and returns status and body, reading the body as it streams in. on_data may return
// false to hang up mid-response.
struct Reply {
  int status = 0;  // 0: no response (connection failed or aborted)
  std::string body;
  httplib::Headers headers;
  std::string error;  // why there is no response
  nlohmann::json json() const { return nlohmann::json::parse(body); }
};

inline Reply post_json(httplib::Client& client, const std::string& path, const std::string& body,
                       const httplib::Headers& headers = {},
                       std::function<bool(const std::string& so_far)> on_data = nullptr) {
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.headers = headers;
  req.set_header("Content-Type", "application/json");
  req.body = body;
  Reply reply;
  req.response_handler = [&](const httplib::Response& r) {
    reply.status = r.status;
    reply.headers = r.headers;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    reply.body.append(data, n);
    return !on_data || on_data(reply.body);
  };
  auto result = client.send(req);
  if (!result) reply.error = httplib::to_string(result.error());
  return reply;
}

inline Reply post_json(httplib::Client& client, const std::string& path, const nlohmann::json& body,
                       const httplib::Headers& headers = {}) {
  return post_json(client, path, body.dump(), headers);
}

// The value of the first sample of `name` (e.g. "morphserve:kv_blocks_used") in a /metrics text,
// or NaN when absent.
inline double metric_value(const std::string& text, const std::string& name) {
  size_t pos = 0;
  while ((pos = text.find(name, pos)) != std::string::npos) {
    const bool line_start = pos == 0 || text[pos - 1] == '\n';
    const size_t after = pos + name.size();
    if (line_start && after < text.size() && (text[after] == '{' || text[after] == ' ')) {
      const size_t eol = text.find('\n', after);
      const std::string line = text.substr(pos, eol - pos);
      return std::stod(line.substr(line.rfind(' ') + 1));
    }
    pos = after;
  }
  return std::nan("");
}

// A sample of one model's metric: model_metric(text, "dummy:tiny", "kv_blocks_used") reads
// morphserve:kv_blocks_used{model_name="dummy:tiny"}; `more_labels` ("finished_reason=\"abort\"")
// follow the model's label.
inline double model_metric(const std::string& text, const std::string& model, const std::string& name,
                           const std::string& more_labels = "") {
  const std::string labels = "model_name=\"" + model + "\"" + (more_labels.empty() ? "" : "," + more_labels);
  return metric_value(text, "morphserve:" + name + "{" + labels + "}");
}

// Polls /metrics until `done` holds for its text (true) or the timeout passes (false).
inline bool wait_for_metrics(const ServerProcess& server, const std::function<bool(const std::string&)>& done,
                             std::chrono::milliseconds timeout, std::string* last = nullptr) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto client = server.client(5s);
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto r = client->Get("/metrics"); r && r->status == 200) {
      if (last) *last = r->body;
      if (done(r->body)) return true;
    }
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

}  // namespace morphserve::testing
