#include "bench/server_url.h"

#include <charconv>

#include <fmt/format.h>

#include "core/error.h"

namespace morphserve::bench {

std::string ServerUrl::origin() const {
  const bool v6 = host.find(':') != std::string::npos;
  return fmt::format("{}://{}{}{}:{}", scheme, v6 ? "[" : "", host, v6 ? "]" : "", port);
}

std::string ServerUrl::str() const { return origin() + base_path; }

ServerUrl parse_server_url(const std::string& url) {
  std::string rest = url;
  ServerUrl out;
  if (rest.rfind("https://", 0) == 0) {
    out.scheme = "https";
    out.port = 443;
    rest = rest.substr(8);
  } else if (rest.rfind("http://", 0) == 0) {
    rest = rest.substr(7);
  }
  if (rest.find("://") != std::string::npos) fail<InvalidArgument>("--url {}: expected http://HOST:PORT", url);
  const size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) {
    out.base_path = rest.substr(slash);
    while (!out.base_path.empty() && out.base_path.back() == '/') out.base_path.pop_back();
  }
  // "[::1]:8080" keeps its colons inside the brackets.
  size_t colon = authority.rfind(':');
  if (colon != std::string::npos && authority.find(']', colon) != std::string::npos) colon = std::string::npos;
  out.host = authority.substr(0, colon);
  if (out.host.size() > 2 && out.host.front() == '[' && out.host.back() == ']') out.host = out.host.substr(1, out.host.size() - 2);
  if (out.host.empty()) fail<InvalidArgument>("--url {}: no host; expected http://HOST:PORT", url);
  if (colon != std::string::npos) {
    const std::string port = authority.substr(colon + 1);
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), out.port);
    if (ec != std::errc() || end != port.data() + port.size() || out.port <= 0 || out.port > 65535) {
      fail<InvalidArgument>("--url {}: bad port '{}'", url, port);
    }
  }
  return out;
}

std::unique_ptr<httplib::Client> make_client(const ServerUrl& url, std::chrono::milliseconds read_timeout,
                                             const std::string& api_key) {
  auto client = std::make_unique<httplib::Client>(url.origin());
  client->set_connection_timeout(std::chrono::seconds(10));
  client->set_read_timeout(read_timeout);
  client->set_write_timeout(std::chrono::seconds(30));
  client->set_keep_alive(false);
  if (!api_key.empty()) client->set_bearer_token_auth(api_key);
  return client;
}

std::optional<nlohmann::json> JsonReply::json() const {
  nlohmann::json parsed = nlohmann::json::parse(body, nullptr, false);
  if (parsed.is_discarded()) return std::nullopt;
  return parsed;
}

std::string describe_error(httplib::Error error) {
  switch (error) {
    case httplib::Error::Connection: return "refused or unreachable";
    case httplib::Error::ConnectionTimeout: return "connect timed out";
    case httplib::Error::Read: return "read failed (connection closed or timed out)";
    case httplib::Error::Write: return "write failed";
    case httplib::Error::Canceled: return "cancelled";
    default: return httplib::to_string(error);
  }
}

namespace {
JsonReply to_reply(const httplib::Result& result) {
  JsonReply reply;
  if (!result) {
    reply.error = describe_error(result.error());
    return reply;
  }
  reply.status = result->status;
  reply.body = result->body;
  return reply;
}
}  // namespace

JsonReply get_json(httplib::Client& client, const ServerUrl& url, const std::string& path) {
  return to_reply(client.Get(url.base_path + path));
}

JsonReply post_json(httplib::Client& client, const ServerUrl& url, const std::string& path, const nlohmann::json& body) {
  return to_reply(client.Post(url.base_path + path, body.dump(), "application/json"));
}

std::string error_message_of(const std::string& body) {
  const nlohmann::json parsed = nlohmann::json::parse(body, nullptr, false);
  if (parsed.is_object()) {
    const auto error = parsed.find("error");
    if (error != parsed.end()) {
      if (error->is_string()) return error->get<std::string>();
      if (error->is_object() && error->contains("message") && (*error)["message"].is_string()) {
        return (*error)["message"].get<std::string>();
      }
    }
    if (const auto detail = parsed.find("detail"); detail != parsed.end()) {
      return detail->is_string() ? detail->get<std::string>() : detail->dump();
    }
    if (const auto message = parsed.find("message"); message != parsed.end() && message->is_string()) {
      return message->get<std::string>();
    }
  }
  std::string text = body.substr(0, 200);
  for (char& c : text) if (c == '\n' || c == '\r') c = ' ';
  return body.size() > 200 ? text + "..." : text;
}

std::string first_model_id(const ServerUrl& url, const std::string& api_key) {
  auto client = make_client(url, std::chrono::seconds(30), api_key);
  const JsonReply reply = get_json(*client, url, "/v1/models");
  if (reply.status == 0) {
    fail<InvalidArgument>("cannot reach {} ({}): is the server running and listening there?", url.str(), reply.error);
  }
  if (reply.status == 401 || reply.status == 403) {
    fail<InvalidArgument>("{} refused GET /v1/models with HTTP {}: give the server's key with --api-key", url.str(),
                          reply.status);
  }
  if (reply.status != 200) {
    fail<InvalidArgument>("{} answered GET /v1/models with HTTP {} ({}): is it an OpenAI-compatible server, ready?",
                          url.str(), reply.status, error_message_of(reply.body));
  }
  const auto doc = reply.json();
  if (!doc || !doc->is_object() || !doc->contains("data") || !(*doc)["data"].is_array() || (*doc)["data"].empty() ||
      !(*doc)["data"][0].contains("id") || !(*doc)["data"][0]["id"].is_string()) {
    fail<InvalidArgument>("{}: GET /v1/models did not list a model (body: {}); name one with --model", url.str(),
                          error_message_of(reply.body));
  }
  return (*doc)["data"][0]["id"].get<std::string>();
}

}  // namespace morphserve::bench
