// Inputs fuzz/ found that once broke a server parser, each replayed exactly (they are also in
// fuzz/corpus). A regression fails here on every build, not only in a fuzzing run.
#include <string>

#include <gtest/gtest.h>

#include "core/error.h"
#include "server/api_error.h"
#include "server/json_fields.h"
#include "server/openai_request.h"

namespace morphserve::server {
namespace {

// The ApiError parsing `body` raises (status 0 when it parses).
ApiError chat_error(const std::string& body) {
  try {
    parse_chat_request(parse_json_body(body));
  } catch (const ApiError& e) {
    return e;
  }
  return ApiError(0, "", "");
}

// fuzz_chat_request (corpus/fuzz_chat_request/escapes.json): a top_p above 0 as a double but
// below float's smallest value was accepted, became 0.0f, and then failed the engine's
// RequestParams::validate() with a 400 that named no field and said "got 0".
TEST(FuzzRegression, TopPThatRoundsToZeroIsRefusedByTheParser) {
  const std::string body =
      R"({"messages": [{"role": "user", "content": "\u0000\ud83d\ude42\n\t\"q\"\\"}], "temperature": 2.0, )"
      R"("top_p": 1e-50, "min_p": 1})";
  const ApiError e = chat_error(body);
  EXPECT_EQ(e.status(), 400);
  EXPECT_EQ(e.param().value_or("<none>"), "top_p") << e.what();
  EXPECT_NE(std::string(e.what()).find("1e-50"), std::string::npos) << e.what();

  // The smallest positive float is still accepted, and what parses passes the engine's check.
  const CompletionRequest r = parse_completion_request(parse_json_body(R"({"prompt": "x", "top_p": 1.5e-45})"));
  EXPECT_GT(r.params.sampling.top_p, 0.0f);
  RequestParams params = r.params;
  params.prompt = {1};
  EXPECT_NO_THROW(params.validate());
}

}  // namespace
}  // namespace morphserve::server
