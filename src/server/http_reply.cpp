#include "server/http_reply.h"

#include "server/json_fields.h"

namespace morphserve::server {

void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(dump_json(body), "application/json");
}

void send_error(httplib::Response& res, const ApiError& error) {
  send_json(res, error.status(), error.to_json());
  if (error.status() == 429 || error.status() == 503) res.set_header("Retry-After", "1");
}

}  // namespace morphserve::server
