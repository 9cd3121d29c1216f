#pragma once
// Where the benchmarked server is, and HTTP clients for it. bench/ talks to any OpenAI-compatible
// server over plain HTTP (cpp-httplib), so this is the only place that knows how a URL maps to a
// connection.
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace morphserve::bench {

struct ServerUrl {
  std::string scheme = "http";  // or "https"
  std::string host;
  int port = 80;
  std::string base_path;  // "" or "/prefix" (no trailing slash), put before every request path

  std::string str() const;  // "http://host:port/prefix"
  std::string origin() const;  // "http://host:port"
};

// "http://host:port[/prefix]", "https://...", "host:port" or "http://host" (port 80 or 443).
// Throws InvalidArgument for anything else.
ServerUrl parse_server_url(const std::string& url);

// A fresh client, hence a fresh connection: requests never share one (a stream would block the
// next). read_timeout bounds each wait for bytes, not the whole request. The key, when given, goes
// with every request as `Authorization: Bearer`.
std::unique_ptr<httplib::Client> make_client(const ServerUrl& url, std::chrono::milliseconds read_timeout,
                                             const std::string& api_key = "");

struct JsonReply {
  int status = 0;       // 0: no response
  std::string error;    // transport error when status is 0
  std::string body;
  // The body parsed as JSON, or nullopt when it is not JSON.
  std::optional<nlohmann::json> json() const;
};

JsonReply get_json(httplib::Client& client, const ServerUrl& url, const std::string& path);
JsonReply post_json(httplib::Client& client, const ServerUrl& url, const std::string& path, const nlohmann::json& body);

// A transport error in words ("refused or unreachable" for a failed connect).
std::string describe_error(httplib::Error error);

// The most useful line of an error body: OpenAI's error.message, vLLM's detail, or the body cut
// to 200 characters.
std::string error_message_of(const std::string& body);

// The first model id of GET /v1/models. Throws InvalidArgument with a message a user can act on
// when the server cannot be reached or does not answer like an OpenAI server.
std::string first_model_id(const ServerUrl& url, const std::string& api_key);

}  // namespace morphserve::bench
