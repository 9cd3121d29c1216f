#include "server/http_server.h"

#include <array>
#include <chrono>
#include <functional>
#include <string_view>

#include <sys/socket.h>

#include <httplib.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/error.h"
#include "server/client_connection.h"
#include "server/completion_handlers.h"
#include "server/dashboard_page.h"
#include "server/http_reply.h"
#include "server/info_handlers.h"

namespace morphserve::server {

namespace {

struct Route {
  std::string_view path;
  std::string_view method;
  bool open;  // reachable without the API key (health checks and scrapers, as vLLM leaves them)
};
constexpr std::array kRoutes = {
    Route{"/v1/completions", "POST", false}, Route{"/v1/chat/completions", "POST", false},
    Route{"/v1/models", "GET", false},       Route{"/tokenize", "POST", false},
    Route{"/detokenize", "POST", false},     Route{"/health", "GET", true},
    Route{"/metrics", "GET", true},          Route{"/morph", "GET", true},
    Route{"/dashboard", "GET", true},  // a page of what /morph and /metrics say, open as they are
};

const Route* find_route(std::string_view path) {
  for (const Route& r : kRoutes) {
    if (r.path == path) return &r;
  }
  return nullptr;
}

// Compares without an early exit, so the time taken does not reveal how much of the key matched.
bool same_secret(std::string_view given, std::string_view key) {
  if (given.size() != key.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < key.size(); ++i) diff |= static_cast<unsigned char>(given[i] ^ key[i]);
  return diff == 0;
}

constexpr time_t kKeepAliveSeconds = 5;
constexpr size_t kKeepAliveMaxRequests = 1000;
constexpr auto kIoTimeout = std::chrono::seconds(10);  // one read or write stalling

// httplib's server with each connection served under ConnectionLimits (client_connection.h).
class GuardedServer : public httplib::Server {
 public:
  explicit GuardedServer(ConnectionLimits limits) : limits_(limits) {}

  // httplib listens with a backlog of 5: a burst of clients connecting at once overflows it and
  // some of them stall or fail. Listening again on the bound socket raises the backlog (Linux
  // allows it).
  void raise_backlog(int backlog) { ::listen(svr_sock_, backlog); }

 private:
  // httplib's own seam for this (its SSL server overrides it too): one accepted connection.
  bool process_and_close_socket(socket_t sock) override {
    return serve_connection(
        sock, limits_, [this] { return svr_sock_ == INVALID_SOCKET; },
        [this](httplib::Stream& stream, bool close_connection, bool& connection_closed,
               const std::function<void(httplib::Request&)>& setup) {
          return process_request(stream, close_connection, connection_closed, setup);
        });
  }

  const ConnectionLimits limits_;
};

ConnectionLimits connection_limits(const HttpServerOptions& o) {
  ConnectionLimits limits;
  limits.request_timeout = o.read_timeout;
  limits.io_timeout = kIoTimeout;
  limits.idle_timeout = std::chrono::seconds(kKeepAliveSeconds);
  limits.max_body_bytes = o.max_body_bytes;
  limits.max_requests = kKeepAliveMaxRequests;
  return limits;
}

}  // namespace

HttpServer::HttpServer(HttpServerOptions options, ServerState& state)
    : options_(std::move(options)),
      state_(state),
      server_(std::make_unique<GuardedServer>(connection_limits(options_))) {
  const size_t threads = static_cast<size_t>(std::max(1, options_.threads));
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server_->set_payload_max_length(options_.max_body_bytes);
  // What the Keep-Alive response header announces; the connection enforces them (and the read
  // and write timeouts) itself.
  server_->set_keep_alive_max_count(kKeepAliveMaxRequests);
  server_->set_keep_alive_timeout(kKeepAliveSeconds);
  server_->set_tcp_nodelay(true);  // SSE chunks are small and latency-sensitive
  // httplib sets SO_REUSEPORT, which lets a second server bind the same port and silently share
  // its traffic; SO_REUSEADDR alone still allows a quick restart.
  server_->set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  install_routes();
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::install_routes() {
  httplib::Server& s = *server_;
  // Method and key checks come first, before the body is read.
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    const Route* route = find_route(req.path);
    if (!route) return httplib::Server::HandlerResponse::Unhandled;  // 404 below
    const bool method_ok = req.method == route->method || (route->method == "GET" && req.method == "HEAD");
    if (!method_ok) {
      res.set_header("Allow", std::string(route->method));
      send_error(res, ApiError(405, "invalid_request_error",
                               fmt::format("{} {} is not allowed; use {}", req.method, req.path, route->method)));
      return httplib::Server::HandlerResponse::Handled;
    }
    if (!route->open && !options_.api_key.empty()) {
      const std::string auth = req.get_header_value("Authorization");
      constexpr std::string_view kBearer = "Bearer ";
      const bool ok = auth.size() > kBearer.size() && auth.compare(0, kBearer.size(), kBearer) == 0 &&
                      same_secret(std::string_view(auth).substr(kBearer.size()), options_.api_key);
      if (!ok) {
        send_error(res, ApiError(401, "invalid_request_error",
                                 "Incorrect API key provided: pass it as 'Authorization: Bearer <key>'", std::nullopt,
                                 "invalid_api_key"));
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  s.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    handle_generation(state_, ApiKind::Completion, req, res);
  });
  s.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    handle_generation(state_, ApiKind::Chat, req, res);
  });
  s.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) { handle_models(state_, res); });
  s.Get("/health", [this](const httplib::Request&, httplib::Response& res) { handle_health(state_, res); });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) { handle_metrics(state_, options_.metrics_compat, res); });
  s.Get("/morph", [this](const httplib::Request&, httplib::Response& res) { handle_morph(state_, res); });
  s.Get("/dashboard", [](const httplib::Request&, httplib::Response& res) {
    res.set_header("Content-Security-Policy", std::string(kDashboardContentSecurityPolicy));
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_content(std::string(dashboard_html()), "text/html; charset=utf-8");
  });
  s.Post("/tokenize", [this](const httplib::Request& req, httplib::Response& res) { handle_tokenize(state_, req, res); });
  s.Post("/detokenize",
         [this](const httplib::Request& req, httplib::Response& res) { handle_detokenize(state_, req, res); });

  // Errors httplib raises itself (no route, body too large, unparsable request) get a JSON body.
  s.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty() || res.is_chunked_content_provider_) return;
    // httplib answers every request it could not read with a 400; say why when a limit was the
    // cause (a Content-Length over the limit is a 413 already: it is refused before its body).
    const ReadFailure failure = current_read_failure();
    if (res.status == 400) {
      switch (failure) {
        case ReadFailure::None: break;
        case ReadFailure::Timeout: res.status = 408; break;
        case ReadFailure::HeadTooLarge: res.status = 431; break;
        case ReadFailure::BodyTooLarge: res.status = 413; break;
      }
    }
    // The rest of an unread request is still on the wire, so the connection cannot carry another.
    if (failure != ReadFailure::None) res.set_header("Connection", "close");
    std::string message;
    switch (res.status) {
      case 404: message = fmt::format("no route for {} {}", req.method, req.path); break;
      case 408:
        message = fmt::format("the request did not arrive whole within {} s (--read-timeout)",
                              std::chrono::duration<double>(options_.read_timeout).count());
        break;
      case 413:
        message = fmt::format("the request body is larger than the limit of {} bytes (--max-body-bytes)",
                              options_.max_body_bytes);
        break;
      case 431:
        message = fmt::format("the request line and headers are larger than the limit of {} bytes",
                              connection_limits(options_).max_head_bytes);
        break;
      default: message = fmt::format("the request could not be served (HTTP {})", res.status); break;
    }
    send_json(res, res.status, error_body(message, error_type_for_status(res.status)));
  });
  s.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr error) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    spdlog::error("{} {}: {}", req.method, req.path, what);
    send_json(res, 500, error_body(fmt::format("internal error: {}", what), "server_error"));
  });
  s.set_logger([](const httplib::Request& req, const httplib::Response& res) {
    spdlog::debug("{} {} -> {}", req.method, req.path, res.status);
  });
}

int HttpServer::start() {
  int port = options_.port;
  if (port == 0) {
    port = server_->bind_to_any_port(options_.host);
  } else if (!server_->bind_to_port(options_.host, port)) {
    port = -1;
  }
  if (port <= 0) {
    fail<Error>("cannot listen on {}:{} (is the address valid and the port free?)", options_.host, options_.port);
  }
  static_cast<GuardedServer&>(*server_).raise_backlog(1024);
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // stop() only works once the server runs, so do not hand back control before it does.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!server_->is_running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return port;
}

void HttpServer::stop() {
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

}  // namespace morphserve::server
