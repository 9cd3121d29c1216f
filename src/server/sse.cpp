#include "server/sse.h"

#include "server/json_fields.h"

namespace morphserve::server {

// dump_json never emits a raw newline (strings escape theirs), so one data line always suffices.
std::string sse_event(const nlohmann::json& data) { return "data: " + dump_json(data) + "\n\n"; }

std::string sse_done() { return "data: [DONE]\n\n"; }

std::string sse_comment(const std::string& text) {
  std::string line = ": ";
  for (char c : text) line += (c == '\n' || c == '\r') ? ' ' : c;
  return line + "\n\n";
}

}  // namespace morphserve::server
