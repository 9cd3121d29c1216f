#pragma once
// A raw TCP connection to the server under test, for what an HTTP client library will not send:
// truncated bodies, byte-by-byte headers, connections dropped mid-response. Every wait is bounded.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

namespace morphserve::testing {

// A response as read off the wire: status, raw head, and the body (Content-Length, or up to close).
struct RawResponse {
  int status = 0;  // 0: no response before the connection closed or the timeout passed
  std::string head;
  std::string body;
  bool closed = false;  // the server closed the connection
  std::string header(const std::string& name) const {
    const std::string key = "\r\n" + name + ": ";
    const size_t at = head.find(key);
    if (at == std::string::npos) return "";
    const size_t start = at + key.size();
    return head.substr(start, head.find("\r\n", start) - start);
  }
};

class RawConnection {
 public:
  explicit RawConnection(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket() failed");
    int yes = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(fd_);
      throw std::runtime_error("connect() failed");
    }
  }
  ~RawConnection() { close(); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // False once the server has closed the connection (or reset it).
  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // Reads one response: the head, then a Content-Length body, or everything up to the close.
  RawResponse read_response(std::chrono::milliseconds timeout) {
    RawResponse r;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    size_t head_end = std::string::npos;
    while ((head_end = pending_.find("\r\n\r\n")) == std::string::npos) {
      if (!receive(deadline, r.closed)) return r;
    }
    r.head = pending_.substr(0, head_end + 2);
    pending_.erase(0, head_end + 4);
    if (r.head.rfind("HTTP/1.", 0) == 0 && r.head.size() > 12) r.status = std::atoi(r.head.c_str() + 9);
    const std::string length = r.header("Content-Length");
    if (!length.empty()) {
      const size_t n = std::stoul(length);
      while (pending_.size() < n && receive(deadline, r.closed)) {
      }
      r.body = pending_.substr(0, n);
      pending_.erase(0, r.body.size());
    } else {
      while (receive(deadline, r.closed)) {
      }
      r.body = std::move(pending_);
      pending_.clear();
    }
    return r;
  }

  // True when the server closes the connection within the timeout; what it sent before is kept
  // in pending().
  bool wait_closed(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    bool closed = false;
    while (receive(deadline, closed)) {
    }
    return closed;
  }

  // Everything received and not yet taken by read_response().
  const std::string& pending() const { return pending_; }
  // Reads what arrives until `done(pending())` holds (true) or the timeout passes.
  template <typename Done>
  bool read_until(Done done, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    bool closed = false;
    while (!done(pending_)) {
      if (!receive(deadline, closed)) return done(pending_);
    }
    return true;
  }

 private:
  // Appends what arrives before the deadline; false on timeout or close (closed set).
  bool receive(std::chrono::steady_clock::time_point deadline, bool& closed) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buffer[65536];
    const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
    if (n <= 0) {
      closed = true;
      return false;
    }
    pending_.append(buffer, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string pending_;
};

// A whole HTTP/1.1 POST with a Content-Length that matches the body.
inline std::string http_post(const std::string& path, std::string_view body,
                             const std::string& content_type = "application/json") {
  return "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: " + content_type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}

}  // namespace morphserve::testing
