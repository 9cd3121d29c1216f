#pragma once
// What both OpenAI request targets check on a body that parsed: the values are inside the ranges
// openai_request.h promises, and the engine's own validation accepts them, so a request the parser
// let through can never fail later in RequestParams::validate() with a message naming no field.
#include <string>

#include "core/error.h"
#include "fuzz_check.h"
#include "server/api_error.h"
#include "server/json_fields.h"
#include "server/openai_request.h"

namespace morphserve::fuzz {

inline void check_generation_request(const server::GenerationRequest& r) {
  check(r.n >= 1 && r.n <= server::kMaxChoices, "n is out of range");
  check(r.params.stop.size() <= server::kMaxStopStrings, "too many stop strings");
  check(r.params.logprobs >= -1 && r.params.logprobs <= server::kMaxLogprobs, "logprobs is out of range");
  check(!r.include_usage || r.stream, "include_usage without stream");
  check(!r.max_tokens || *r.max_tokens >= 1, "max_tokens below 1");
  RequestParams params = r.params;
  params.prompt = {1};
  params.max_tokens = r.max_tokens.value_or(16);
  try {
    params.validate();
  } catch (const InvalidArgument& e) {
    property_failed("the engine refuses parameters the request parser accepted", e.what());
  }
}

// Every refusal is a 400 whose JSON body serialises.
inline void check_api_error(const server::ApiError& e) {
  check(e.status() == 400, "a request body was refused with a status other than 400", e.what());
  check(!server::dump_json(e.to_json()).empty(), "an error body serialises to nothing");
}

}  // namespace morphserve::fuzz
