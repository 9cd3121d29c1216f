#pragma once
// The HTTP front end: routes, API-key check, error replies in OpenAI's shape for everything
// httplib itself rejects (404, 405, 408, 413, 431, exceptions), a worker pool large enough for many
// concurrent streams, and connections served under limits (client_connection.h). It answers from the moment start() returns, before the model is loaded
// (/health says "loading" until ServerState::set_ready).
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <thread>

#include "server/prometheus.h"
#include "server/server_state.h"

namespace httplib {
class Server;
}

namespace morphserve::server {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;             // 0: any free port
  std::string api_key;         // empty: no authentication
  size_t max_body_bytes = 4u << 20;
  int threads = 128;           // concurrent connections served (each stream holds one)
  MetricsCompat metrics_compat = MetricsCompat::None;  // extra names /metrics answers under
  // A client must send a whole request (head and body) within this from its first byte; a slower
  // one gets 408 and is disconnected, so slow clients cannot hold the connection slots.
  std::chrono::milliseconds read_timeout{30000};
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, ServerState& state);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, starts the listening thread and returns the bound port. Throws Error when the address
  // cannot be bound.
  int start();
  // Stops accepting connections and waits for every handler to return. Idempotent.
  void stop();

 private:
  void install_routes();

  HttpServerOptions options_;
  ServerState& state_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace morphserve::server
