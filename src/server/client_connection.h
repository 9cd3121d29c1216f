#pragma once
// One client connection, served request after request as httplib serves it, with the limits
// httplib 0.11 lacks. httplib only bounds each single read (a client sending one byte every few
// seconds keeps a worker thread forever: slow-loris), reads header lines of any length into
// memory, and stores a chunked request body of any size. Here every request must arrive whole
// within a deadline from its first byte, its head (request line and headers) is bounded, and so is
// a chunked body. A request with neither Content-Length nor chunked encoding has no body, as HTTP
// says (httplib would wait for the connection to close).
#include <chrono>
#include <cstddef>
#include <functional>

#include <httplib.h>

namespace morphserve::server {

struct ConnectionLimits {
  std::chrono::milliseconds request_timeout{30000};  // first byte of a request to its last
  std::chrono::milliseconds io_timeout{10000};       // one read or write stalling
  std::chrono::milliseconds idle_timeout{5000};      // keep-alive: waiting for the next request
  size_t max_head_bytes = 64 * 1024;                 // request line and headers
  size_t max_body_bytes = 4u << 20;                  // a chunked body on the wire, framing included
  size_t max_requests = 1000;                        // per connection
};

// Why reading the request served on this thread failed. httplib answers every failed read with a
// 400; its error handler (called on the thread that serves the connection) asks this to say more.
enum class ReadFailure { None, Timeout, HeadTooLarge, BodyTooLarge };
ReadFailure current_read_failure();

// httplib's Server::process_request for one request on `stream`; `setup` must be passed on (it is
// called once the head has been read).
using ProcessRequest = std::function<bool(httplib::Stream& stream, bool close_connection, bool& connection_closed,
                                          const std::function<void(httplib::Request&)>& setup)>;

// Serves requests on `sock` until the client closes it, a limit is hit, the keep-alive wait ends,
// or `stopping()` turns true; then closes the socket. Returns the last request's result.
bool serve_connection(socket_t sock, const ConnectionLimits& limits, const std::function<bool()>& stopping,
                      const ProcessRequest& process);

}  // namespace morphserve::server
