// libFuzzer target: a raw /v1/chat/completions body -> parse_json_body -> parse_chat_request, and
// the parsed messages through the default chat template (which renders any conversation). Bad
// input must end in a 400 ApiError; anything else is a finding.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.h"
#include "generation_request_checks.h"
#include "server/api_error.h"
#include "server/chat_template.h"
#include "server/json_fields.h"
#include "server/openai_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace morphserve;
  using namespace morphserve::fuzz;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const nlohmann::json body = server::parse_json_body(text);
    check(body.is_object(), "parse_json_body returned something other than an object");
    (void)server::dump_json(body);
    const server::ChatRequest r = server::parse_chat_request(body);
    check_generation_request(r);
    check(!r.messages.empty(), "a chat request without messages was accepted");
    for (const server::ChatMessage& m : r.messages) {
      check(m.role == "system" || m.role == "user" || m.role == "assistant", "a message has an unknown role", m.role);
    }
    const server::ChatTemplate chat_template =
        server::make_chat_template(server::ChatTemplateFamily::Default, "<s>", "</s>");
    const std::string prompt = server::render_chat(chat_template, r.messages, r.add_generation_prompt);
    for (const server::ChatMessage& m : r.messages) {
      check(prompt.find(m.content) != std::string::npos, "the rendered prompt lacks a message's content");
    }
  } catch (const server::ApiError& e) {
    check_api_error(e);
  }
  return 0;
}
