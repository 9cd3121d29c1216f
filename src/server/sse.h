#pragma once
// Server-sent events framing as OpenAI streams use it: each event is one "data: <json>" line and
// a blank line; the stream ends with "data: [DONE]". Comment lines (": ...") keep an idle stream
// alive and let the server notice a client that has gone.
#include <string>

#include <nlohmann/json.hpp>

namespace morphserve::server {

std::string sse_event(const nlohmann::json& data);
std::string sse_done();
std::string sse_comment(const std::string& text);

}  // namespace morphserve::server
