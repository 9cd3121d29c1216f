#include "server/api_error.h"

namespace morphserve::server {

ApiError::ApiError(int status, std::string type, const std::string& message, std::optional<std::string> param,
                   std::optional<std::string> code)
    : Error(message), status_(status), type_(std::move(type)), param_(std::move(param)), code_(std::move(code)) {}

nlohmann::json ApiError::to_json() const { return error_body(what(), type_, param_, code_); }

void throw_invalid(const std::string& message, std::optional<std::string> param, std::optional<std::string> code) {
  throw ApiError(400, "invalid_request_error", message, std::move(param), std::move(code));
}

nlohmann::json error_body(const std::string& message, const std::string& type, std::optional<std::string> param,
                          std::optional<std::string> code) {
  nlohmann::json error = {{"message", message}, {"type", type}, {"param", nullptr}, {"code", nullptr}};
  if (param) error["param"] = *param;
  if (code) error["code"] = *code;
  return {{"error", std::move(error)}};
}

std::string error_type_for_status(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    case 503: return "service_unavailable_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

}  // namespace morphserve::server
