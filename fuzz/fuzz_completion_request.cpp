// libFuzzer target: a raw /v1/completions body -> parse_json_body -> parse_completion_request.
// Bad input must end in a 400 ApiError; anything else (another exception, which the server would
// answer with a 500, a crash, a sanitizer report, a parsed value out of its documented range) is
// a finding.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>

#include "fuzz_check.h"
#include "generation_request_checks.h"
#include "server/api_error.h"
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
    const server::CompletionRequest r = server::parse_completion_request(body);
    check_generation_request(r);
    if (const auto* ids = std::get_if<std::vector<int32_t>>(&r.prompt)) {
      check(!ids->empty(), "an empty token-id prompt was accepted");
      for (const int32_t id : *ids) check(id >= 0, "a negative token id was accepted");
    }
    check(!(r.echo && r.params.logprobs >= 0), "echo together with logprobs was accepted");
  } catch (const server::ApiError& e) {
    check_api_error(e);
  }
  return 0;
}
