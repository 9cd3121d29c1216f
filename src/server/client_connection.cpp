#include "server/client_connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cerrno>
#include <climits>
#include <cstring>
#include <limits>
#include <string>
#include <system_error>

namespace morphserve::server {

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kUnlimited = std::numeric_limits<size_t>::max();
// How often a keep-alive wait checks whether the server is stopping.
constexpr auto kStopCheckInterval = std::chrono::milliseconds(100);
// After refusing a request it could not read whole, how long the connection keeps discarding what
// the client still sends. Closing on unread data resets the connection, and the client could lose
// the error response before reading it.
constexpr auto kLinger = std::chrono::seconds(1);

// Waits for `events` on the socket until `until`; false on timeout or error. POLLHUP and POLLERR
// count as ready: the recv or send that follows reports them.
bool wait_until(socket_t sock, short events, Clock::time_point until) {
  for (;;) {
    // Rounded up: a wait that returns has reached `until`, never fallen a fraction of a millisecond short.
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now()).count();
    pollfd p{sock, events, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::clamp<int64_t>(left, 0, INT_MAX)));
    if (r > 0) return true;
    if (r == 0 || errno != EINTR) return false;
  }
}

void socket_address(socket_t sock, bool peer, std::string& ip, int& port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  auto* a = reinterpret_cast<sockaddr*>(&addr);
  if ((peer ? ::getpeername(sock, a, &len) : ::getsockname(sock, a, &len)) != 0) return;
  char text[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text));
    port = ntohs(v4->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    ::inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text));
    port = ntohs(v6->sin6_port);
  }
  ip = text;
}

// The socket as httplib reads and writes it, with a byte budget and a deadline per request.
class ConnectionStream final : public httplib::Stream {
 public:
  ConnectionStream(socket_t sock, const ConnectionLimits& limits) : sock_(sock), limits_(limits) {}

  // Keep-alive: waits for the next request's first byte. False when none came in time, or the
  // server is stopping.
  bool wait_for_request(const std::function<bool()>& stopping) {
    if (buffered_ > 0) return true;  // pipelined
    const Clock::time_point until = Clock::now() + limits_.idle_timeout;
    while (!stopping()) {
      const Clock::time_point now = Clock::now();
      if (now >= until) return false;
      if (wait_until(sock_, POLLIN, std::min(until, now + kStopCheckInterval))) return true;
    }
    return false;
  }

  void begin_request() {
    deadline_ = Clock::now() + limits_.request_timeout;
    budget_ = limits_.max_head_bytes;
    over_budget_ = ReadFailure::HeadTooLarge;
    failure_ = ReadFailure::None;
  }

  // The head has been read: what may the body take? httplib reads a chunked body before looking
  // at Content-Length. A Content-Length over the limit is refused before a byte of the body is
  // read: httplib would skip the body first, and a client that waits for an answer before sending
  // it (or never sends it) would wait out the read timeout for its 413.
  void begin_body(const httplib::Request& req) {
    if (::strcasecmp(req.get_header_value("Transfer-Encoding").c_str(), "chunked") == 0) {
      budget_ = limits_.max_body_bytes;
      over_budget_ = ReadFailure::BodyTooLarge;
    } else if (req.has_header("Content-Length")) {
      const std::string length = req.get_header_value("Content-Length");
      uint64_t announced = 0;
      const auto [end, error] = std::from_chars(length.data(), length.data() + length.size(), announced);
      const bool too_large = error == std::errc::result_out_of_range ||
                             (error == std::errc() && end == length.data() + length.size() && announced > limits_.max_body_bytes);
      budget_ = too_large ? 0 : kUnlimited;
      over_budget_ = too_large ? ReadFailure::BodyTooLarge : ReadFailure::None;
    } else {
      budget_ = 0;  // no body: reading it meets its end at once
      over_budget_ = ReadFailure::None;
    }
  }

  ReadFailure failure() const { return failure_; }

  // Half-closes (the client reads the response, then the end) and discards input for a while.
  void linger() {
    ::shutdown(sock_, SHUT_WR);
    const Clock::time_point until = Clock::now() + kLinger;
    while (wait_until(sock_, POLLIN, until)) {
      const ssize_t n = ::recv(sock_, buffer_.data(), buffer_.size(), MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) break;
    }
  }

  // True once the connection cannot carry another request.
  bool broken() const { return broken_; }

  bool is_readable() const override {
    return buffered_ > 0 || wait_until(sock_, POLLIN, std::min(deadline_, Clock::now() + limits_.io_timeout));
  }

  bool is_writable() const override { return wait_until(sock_, POLLOUT, Clock::now() + limits_.io_timeout); }

  ssize_t read(char* ptr, size_t size) override {
    if (broken_) return -1;
    if (budget_ == 0) {
      if (over_budget_ == ReadFailure::None) return 0;
      return fail(over_budget_);
    }
    if (buffered_ == 0 && !fill()) return broken_ ? -1 : 0;
    const size_t n = std::min({size, buffered_, budget_});
    std::memcpy(ptr, buffer_.data() + begin_, n);
    begin_ += n;
    buffered_ -= n;
    if (budget_ != kUnlimited) budget_ -= n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    const Clock::time_point until = Clock::now() + limits_.io_timeout;
    for (;;) {
      // Never blocks in send(): a client that stops reading must not hold the thread past the timeout.
      if (!wait_until(sock_, POLLOUT, until)) break;
      const ssize_t n = ::send(sock_, ptr, size, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n >= 0) return n;
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) break;
    }
    broken_ = true;
    return -1;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override { socket_address(sock_, true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { socket_address(sock_, false, ip, port); }
  socket_t socket() const override { return sock_; }

 private:
  ssize_t fail(ReadFailure why) {
    failure_ = why;
    broken_ = true;
    return -1;
  }

  // Receives into the empty buffer. False at the peer's end (broken_ unset) or on a failure.
  bool fill() {
    for (;;) {
      // Checked before every receive: a client trickling bytes never lets a single wait time out.
      if (Clock::now() >= deadline_) {
        fail(ReadFailure::Timeout);
        return false;
      }
      if (!wait_until(sock_, POLLIN, std::min(deadline_, Clock::now() + limits_.io_timeout))) {
        if (Clock::now() >= deadline_) continue;  // reported as a Timeout above
        broken_ = true;                           // stalled for io_timeout, or poll failed
        return false;
      }
      const ssize_t n = ::recv(sock_, buffer_.data(), buffer_.size(), MSG_DONTWAIT);
      if (n > 0) {
        begin_ = 0;
        buffered_ = static_cast<size_t>(n);
        return true;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
      broken_ = n < 0;
      return false;
    }
  }

  const socket_t sock_;
  const ConnectionLimits& limits_;
  std::array<char, 4096> buffer_{};
  size_t begin_ = 0;
  size_t buffered_ = 0;
  Clock::time_point deadline_ = Clock::time_point::max();
  size_t budget_ = 0;
  ReadFailure over_budget_ = ReadFailure::None;
  ReadFailure failure_ = ReadFailure::None;
  bool broken_ = false;
};

thread_local const ConnectionStream* t_serving = nullptr;

}  // namespace

ReadFailure current_read_failure() { return t_serving ? t_serving->failure() : ReadFailure::None; }

bool serve_connection(socket_t sock, const ConnectionLimits& limits, const std::function<bool()>& stopping,
                      const ProcessRequest& process) {
  ConnectionStream stream(sock, limits);
  bool result = false;
  for (size_t served = 0; served < limits.max_requests; ++served) {
    if (!stream.wait_for_request(stopping)) break;
    stream.begin_request();
    bool closed = false;
    t_serving = &stream;
    result = process(stream, served + 1 == limits.max_requests, closed,
                     [&stream](httplib::Request& req) { stream.begin_body(req); });
    t_serving = nullptr;
    if (!result || closed || stream.broken()) break;
  }
  if (stream.failure() != ReadFailure::None) stream.linger();
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return result;
}

}  // namespace morphserve::server
