#pragma once
// Errors a client caused (or may retry), in OpenAI's JSON error shape:
// {"error": {"message", "type", "param", "code"}} with the HTTP status that goes with it.
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace morphserve::server {

class ApiError : public Error {
 public:
  ApiError(int status, std::string type, const std::string& message, std::optional<std::string> param = std::nullopt,
           std::optional<std::string> code = std::nullopt);

  int status() const { return status_; }
  const std::string& type() const { return type_; }
  const std::optional<std::string>& param() const { return param_; }
  const std::optional<std::string>& code() const { return code_; }

  nlohmann::json to_json() const;

 private:
  int status_;
  std::string type_;
  std::optional<std::string> param_;
  std::optional<std::string> code_;
};

// 400 invalid_request_error naming the offending field (param).
[[noreturn]] void throw_invalid(const std::string& message, std::optional<std::string> param = std::nullopt,
                                std::optional<std::string> code = std::nullopt);

// The body for an error of any status (used for errors httplib itself raises, such as 413).
nlohmann::json error_body(const std::string& message, const std::string& type,
                          std::optional<std::string> param = std::nullopt,
                          std::optional<std::string> code = std::nullopt);

// OpenAI's error type for a status: invalid_request_error (4xx), server_error (5xx), ...
std::string error_type_for_status(int status);

}  // namespace morphserve::server
