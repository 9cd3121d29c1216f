#pragma once
// A tiny in-process imitation of an OpenAI-compatible server for the replay client's tests:
// /v1/models, /tokenize (vLLM's or llama-server's request shape), /detokenize, /metrics, /morph
// and a streaming /v1/completions whose delays, failures and framing the test controls.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace morphserve::testing {

// A port nothing listens on: bound, then closed (for "server unreachable" cases).
inline int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Starts a bound server's accept loop on a thread and returns once it runs: httplib's stop() does
// nothing to a server whose loop has not started yet, so stopping too early would hang the join.
inline std::thread listen_in_background(httplib::Server& server) {
  std::thread thread([&server] { server.listen_after_bind(); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!server.is_running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return thread;
}

class FakeOpenAiServer {
 public:
  enum class Failure { None, Http500, NoDone, Truncated, StreamErrorEvent };
  enum class TokenizeShape { Prompt, Content };

  struct Behaviour {
    std::chrono::milliseconds first_token_delay{0};
    std::chrono::milliseconds token_delay{0};
    Failure failure = Failure::None;
    bool split_events = false;        // write every event in small pieces, with comments between
    bool crlf = false;                // "\r\n" line ends
    int block_until_in_flight = 0;    // hold each request until this many are open (bounded wait)
    TokenizeShape tokenize = TokenizeShape::Prompt;
    bool morph = true;                // answer /morph
    bool held_back_text = false;      // no chunk per token, only a finishing one without text
    std::string metrics_text = "vllm:num_requests_running{model_name=\"fake\"} 2\n";
  };

  FakeOpenAiServer() : FakeOpenAiServer(Behaviour{}) {}
  explicit FakeOpenAiServer(Behaviour behaviour) : behaviour_(std::move(behaviour)) {
    server_.new_task_queue = [] { return new httplib::ThreadPool(64); };
    server_.Get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"object":"list","data":[{"id":"fake-model","object":"model"}]})", "application/json");
    });
    server_.Post("/tokenize", [this](const httplib::Request& req, httplib::Response& res) { tokenize(req, res); });
    server_.Post("/detokenize", [](const httplib::Request& req, httplib::Response& res) {
      const auto body = nlohmann::json::parse(req.body);
      std::string text;
      for (int id : body["tokens"]) text += static_cast<char>('a' + id % 26);
      res.set_content(nlohmann::json{{"prompt", text}}.dump(), "application/json");
    });
    server_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(behaviour_.metrics_text, "text/plain; version=0.0.4");
    });
    server_.Get("/morph", [this](const httplib::Request&, httplib::Response& res) {
      if (!behaviour_.morph) {
        res.status = 404;
        res.set_content(R"({"error":{"message":"not found"}})", "application/json");
        return;
      }
      res.set_content(R"({"mode":"dynamic","layers":[{"precision":"q4_0","full_precision":"f32"},)"
                      R"({"precision":"f32","full_precision":"f32"}],"swaps":{"in_flight":1}})",
                      "application/json");
    });
    server_.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) { complete(req, res, false); });
    server_.Post("/v1/chat/completions",
                 [this](const httplib::Request& req, httplib::Response& res) { complete(req, res, true); });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = listen_in_background(server_);
  }

  ~FakeOpenAiServer() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
    server_.stop();
    thread_.join();
  }

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int max_in_flight_seen() const {
    std::lock_guard lock(mutex_);
    return max_in_flight_;
  }
  std::vector<nlohmann::json> bodies() const {
    std::lock_guard lock(mutex_);
    return bodies_;
  }

  // The ids this server gives a text: one per byte.
  static std::vector<int> ids_of(const std::string& text) {
    std::vector<int> ids;
    for (unsigned char c : text) ids.push_back(100 + c);
    return ids;
  }

 private:
  void tokenize(const httplib::Request& req, httplib::Response& res) {
    const auto body = nlohmann::json::parse(req.body);
    const char* key = behaviour_.tokenize == TokenizeShape::Prompt ? "prompt" : "content";
    if (!body.contains(key)) {
      res.status = 400;
      res.set_content(R"({"error":{"message":"missing field"}})", "application/json");
      return;
    }
    nlohmann::json tokens = ids_of(body[key].get<std::string>());
    res.set_content(nlohmann::json{{"tokens", tokens}}.dump(), "application/json");
  }

  void complete(const httplib::Request& req, httplib::Response& res, bool chat) {
    const auto body = nlohmann::json::parse(req.body);
    {
      std::unique_lock lock(mutex_);
      bodies_.push_back(body);
      ++in_flight_;
      max_in_flight_ = std::max(max_in_flight_, in_flight_);
      changed_.notify_all();
      if (behaviour_.block_until_in_flight > 0) {
        // Once N were open together, everyone goes (the first to go may finish before the rest wake).
        if (in_flight_ >= behaviour_.block_until_in_flight) released_ = true;
        changed_.wait_for(lock, std::chrono::seconds(10), [&] { return stopping_ || released_; });
      }
    }
    if (behaviour_.failure == Failure::Http500) {
      leave();
      res.status = 500;
      res.set_content(R"({"error":{"message":"boom","type":"server_error"}})", "application/json");
      return;
    }
    const int tokens = body.value("max_tokens", 16);
    res.set_chunked_content_provider("text/event-stream", [this, tokens, chat](size_t, httplib::DataSink& sink) {
      const std::string nl = behaviour_.crlf ? "\r\n" : "\n";
      const auto event = [&](const std::string& data) {
        const std::string text = "data: " + data + nl + nl;
        if (!behaviour_.split_events) return sink.write(text.data(), text.size());
        for (size_t pos = 0; pos < text.size(); pos += 7) {
          const std::string piece = text.substr(pos, 7);
          if (!sink.write(piece.data(), piece.size())) return false;
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        const std::string comment = ": keep-alive" + nl + nl;
        return sink.write(comment.data(), comment.size());
      };
      const auto choice = [&](const std::string& text, bool last) {
        const nlohmann::json finish = last ? nlohmann::json("length") : nlohmann::json(nullptr);
        if (chat) return nlohmann::json{{"index", 0}, {"delta", {{"content", text}}}, {"finish_reason", finish}};
        return nlohmann::json{{"index", 0}, {"text", text}, {"finish_reason", finish}};
      };
      if (chat) {
        event(nlohmann::json{{"choices", {{{"index", 0}, {"delta", {{"role", "assistant"}, {"content", ""}}},
                                           {"finish_reason", nullptr}}}}}.dump());
      }
      std::this_thread::sleep_for(behaviour_.first_token_delay);
      for (int i = 0; i < tokens; ++i) {
        if (i > 0) std::this_thread::sleep_for(behaviour_.token_delay);
        const bool last = i + 1 == tokens;
        if (behaviour_.held_back_text && !last) continue;
        const std::string text = behaviour_.held_back_text ? "" : " t" + std::to_string(i);
        const nlohmann::json chunk = {{"choices", {choice(text, last)}}, {"usage", nullptr}};
        if (!event(chunk.dump())) break;
        if (i == 1 && behaviour_.failure == Failure::Truncated) {
          leave();
          return false;  // drop the connection mid-stream
        }
      }
      if (behaviour_.failure == Failure::StreamErrorEvent) event(R"({"error":{"message":"engine failed"}})");
      event(nlohmann::json{{"choices", nlohmann::json::array()},
                           {"usage", {{"prompt_tokens", 3}, {"completion_tokens", tokens}}}}.dump());
      if (behaviour_.failure != Failure::NoDone) event("[DONE]");
      leave();
      sink.done();
      return true;
    });
  }

  void leave() {
    std::lock_guard lock(mutex_);
    --in_flight_;
  }

  Behaviour behaviour_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  int in_flight_ = 0;
  int max_in_flight_ = 0;
  bool stopping_ = false;
  bool released_ = false;
  std::vector<nlohmann::json> bodies_;
};

}  // namespace morphserve::testing
