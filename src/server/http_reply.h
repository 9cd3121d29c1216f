#pragma once
// Writing JSON replies and OpenAI-shaped errors into httplib responses.
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "server/api_error.h"

namespace morphserve::server {

// Sets the status and the body and, for 429 and 503, a Retry-After header.
void send_json(httplib::Response& res, int status, const nlohmann::json& body);
void send_error(httplib::Response& res, const ApiError& error);

}  // namespace morphserve::server
