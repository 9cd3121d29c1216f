#include "server/http_reply.h"

#include "server/json_fields.h"

namespace morphserve::server {

void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(dump_json(body), "application/json");
  // Busy or unavailable for now: tells clients (the OpenAI SDKs honour it) when to try again.
  if (status == 429 || status == 503) res.set_header("Retry-After", "1");
}

void send_error(httplib::Response& res, const ApiError& error) { send_json(res, error.status(), error.to_json()); }

}  // namespace morphserve::server
