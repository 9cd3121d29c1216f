#include "server/haproxy_agent.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/error.h"
#include "engine/engine.h"
#include "morph/morph_status.h"

namespace morphserve::server {

namespace {

// How often the accept loop looks at the stop flag.
constexpr int kStopCheckMs = 100;

}  // namespace

int agent_weight_percent(const AgentInputs& in) {
  const double free_share =
      in.kv_blocks_total > 0
          ? std::clamp(static_cast<double>(in.kv_blocks_total - in.kv_blocks_used) / static_cast<double>(in.kv_blocks_total), 0.0, 1.0)
          : 1.0;
  const double kv = 0.25 + 0.75 * free_share;  // a full pool still drains as requests finish
  const double queue = 1.0 / (1.0 + static_cast<double>(std::max<int64_t>(in.num_waiting, 0)));
  const double precision = 1.0 - 0.5 * std::clamp(in.precision_degradation, 0.0, 1.0);
  return std::clamp(static_cast<int>(std::lround(100.0 * kv * queue * precision)), 1, 100);
}

std::string agent_reply(const AgentInputs& in) {
  switch (in.phase) {
    case ServerPhase::Loading: return "down\n";
    case ServerPhase::ShuttingDown: return "drain\n";
    case ServerPhase::Ready: break;
  }
  return fmt::format("up {}%\n", agent_weight_percent(in));
}

HaproxyAgent::HaproxyAgent(const ServerState& state) : state_(state) {}

HaproxyAgent::~HaproxyAgent() { stop(); }

AgentInputs HaproxyAgent::inputs() const {
  AgentInputs in;
  in.phase = state_.phase();
  if (const ServingModel* m = state_.model()) {
    const EngineSnapshot s = m->engine->snapshot();
    in.kv_blocks_total = s.kv_blocks_total;
    in.kv_blocks_used = s.kv_blocks_used;
    in.num_waiting = s.num_waiting;
    if (m->morph) in.precision_degradation = m->morph->summary().precision_degradation;
  }
  return in;
}

int HaproxyAgent::start(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    fail<Error>("--haproxy-agent-port: cannot resolve {}: {}", host, ::gai_strerror(rc));
  }
  std::string why = "no address";
  for (addrinfo* a = found; a != nullptr && listen_fd_ < 0; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    const int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 64) == 0) {
      listen_fd_ = fd;
    } else {
      why = std::strerror(errno);
      ::close(fd);
    }
  }
  ::freeaddrinfo(found);
  if (listen_fd_ < 0) fail<Error>("--haproxy-agent-port: cannot listen on {}:{}: {}", host, port, why);

  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &len);
  const int bound_port = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                                     : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  thread_ = std::thread([this] { serve(); });
  return bound_port;
}

void HaproxyAgent::serve() {
  while (!stopping_.load(std::memory_order_acquire)) {
    pollfd p{listen_fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, kStopCheckMs);
    if (r <= 0) continue;  // timeout, or EINTR
    const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (client < 0) continue;
    // HAProxy may send agent-send text first; the answer does not depend on it, so it is not read.
    // One short line fits any socket buffer: a non-blocking send never stalls this loop.
    const std::string line = agent_reply(inputs());
    const ssize_t sent = ::send(client, line.data(), line.size(), MSG_NOSIGNAL);
    if (sent != static_cast<ssize_t>(line.size())) spdlog::debug("haproxy agent: a check closed before its answer");
    ::shutdown(client, SHUT_RDWR);
    ::close(client);
  }
}

void HaproxyAgent::stop() {
  stopping_.store(true, std::memory_order_release);
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
  }
}

}  // namespace morphserve::server
