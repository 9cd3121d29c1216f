// Parsing and checking of /v1/completions and /v1/chat/completions bodies: every field, every error.
#include "server/openai_request.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/api_error.h"
#include "server/json_fields.h"

namespace morphserve::server {
namespace {

using nlohmann::json;

json completion(json extra = json::object()) {
  json body = {{"prompt", "hello"}};
  body.update(extra);
  return body;
}

json chat(json extra = json::object()) {
  json body = {{"messages", json::array({{{"role", "user"}, {"content", "hi"}}})}};
  body.update(extra);
  return body;
}

// The ApiError a completion body raises (status 0 when it parses).
ApiError completion_error(const json& body) {
  try {
    parse_completion_request(body);
  } catch (const ApiError& e) {
    return e;
  }
  return ApiError(0, "", "");
}

ApiError chat_error(const json& body) {
  try {
    parse_chat_request(body);
  } catch (const ApiError& e) {
    return e;
  }
  return ApiError(0, "", "");
}

void expect_invalid(const ApiError& e, const std::string& param, const std::string& message_part) {
  EXPECT_EQ(e.status(), 400) << e.what();
  EXPECT_EQ(e.type(), "invalid_request_error");
  EXPECT_EQ(e.param().value_or("<none>"), param) << e.what();
  EXPECT_THAT(e.what(), ::testing::HasSubstr(message_part));
}

TEST(OpenAiRequest, CompletionDefaults) {
  const CompletionRequest r = parse_completion_request(completion());
  EXPECT_EQ(std::get<std::string>(r.prompt), "hello");
  EXPECT_FALSE(r.model);
  EXPECT_FALSE(r.max_tokens);
  EXPECT_FLOAT_EQ(r.params.sampling.temperature, 1.0f);  // OpenAI's default
  EXPECT_EQ(r.params.sampling.top_k, 0);
  EXPECT_FLOAT_EQ(r.params.sampling.top_p, 1.0f);
  EXPECT_FLOAT_EQ(r.params.sampling.min_p, 0.0f);
  EXPECT_FALSE(r.params.sampling.seed);
  EXPECT_TRUE(r.params.stop.empty());
  EXPECT_EQ(r.params.logprobs, -1);
  EXPECT_EQ(r.n, 1);
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.include_usage);
  EXPECT_FALSE(r.echo);
  EXPECT_FALSE(r.params.ignore_eos);
}

TEST(OpenAiRequest, CompletionEveryField) {
  const CompletionRequest r = parse_completion_request(completion({{"model", "m"},
                                                                   {"max_tokens", 7},
                                                                   {"temperature", 0.5},
                                                                   {"top_p", 0.9},
                                                                   {"top_k", 40},
                                                                   {"min_p", 0.05},
                                                                   {"seed", 1234},
                                                                   {"stop", json::array({"\n", "END"})},
                                                                   {"presence_penalty", 0.5},
                                                                   {"frequency_penalty", -1.5},
                                                                   {"n", 3},
                                                                   {"logprobs", 5},
                                                                   {"ignore_eos", true},
                                                                   {"stream", true},
                                                                   {"stream_options", {{"include_usage", true}}},
                                                                   {"user", "someone"},
                                                                   {"best_of", 3},
                                                                   {"logit_bias", json::object()}}));
  EXPECT_EQ(r.model, "m");
  EXPECT_EQ(r.max_tokens, 7);
  EXPECT_FLOAT_EQ(r.params.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.params.sampling.top_p, 0.9f);
  EXPECT_EQ(r.params.sampling.top_k, 40);
  EXPECT_FLOAT_EQ(r.params.sampling.min_p, 0.05f);
  EXPECT_EQ(r.params.sampling.seed, 1234u);
  EXPECT_EQ(r.params.stop, (std::vector<std::string>{"\n", "END"}));
  EXPECT_FLOAT_EQ(r.params.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(r.params.frequency_penalty, -1.5f);
  EXPECT_EQ(r.n, 3);
  EXPECT_EQ(r.params.logprobs, 5);
  EXPECT_TRUE(r.params.ignore_eos);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
}

TEST(OpenAiRequest, PromptForms) {
  EXPECT_EQ(std::get<std::vector<int32_t>>(parse_completion_request(completion({{"prompt", {1, 2, 3}}})).prompt),
            (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(std::get<std::string>(parse_completion_request(completion({{"prompt", {"one"}}})).prompt), "one");
  EXPECT_EQ(std::get<std::vector<int32_t>>(
                parse_completion_request(completion({{"prompt", json::array({json::array({5, 6})})}})).prompt),
            (std::vector<int32_t>{5, 6}));
  // Empty strings pass parsing; the handler refuses them once it knows the model.
  EXPECT_EQ(std::get<std::string>(parse_completion_request(completion({{"prompt", ""}})).prompt), "");
}

TEST(OpenAiRequest, PromptErrors) {
  expect_invalid(completion_error(json{{"max_tokens", 3}}), "prompt", "required");
  expect_invalid(completion_error(completion({{"prompt", nullptr}})), "prompt", "required");
  expect_invalid(completion_error(completion({{"prompt", 5}})), "prompt", "must be a string or an array");
  expect_invalid(completion_error(completion({{"prompt", json::array()}})), "prompt", "must not be empty");
  expect_invalid(completion_error(completion({{"prompt", {"a", "b"}}})), "prompt", "batches of prompts");
  expect_invalid(completion_error(completion({{"prompt", {1, -2}}})), "prompt", "between 0 and");
  expect_invalid(completion_error(completion({{"prompt", {1, "x"}}})), "prompt", "must be an integer");
  expect_invalid(completion_error(completion({{"prompt", {1, 2.5}}})), "prompt", "must be an integer");
}

TEST(OpenAiRequest, IntegerFields) {
  EXPECT_EQ(parse_completion_request(completion({{"max_tokens", 16.0}})).max_tokens, 16);  // integral float
  EXPECT_FALSE(parse_completion_request(completion({{"max_tokens", nullptr}})).max_tokens);
  expect_invalid(completion_error(completion({{"max_tokens", -1}})), "max_tokens", "between 1 and");
  expect_invalid(completion_error(completion({{"max_tokens", 0}})), "max_tokens", "between 1 and");
  expect_invalid(completion_error(completion({{"max_tokens", "5"}})), "max_tokens", "must be an integer, got string");
  expect_invalid(completion_error(completion({{"max_tokens", 2.5}})), "max_tokens", "must be an integer");
  expect_invalid(completion_error(completion({{"max_tokens", true}})), "max_tokens", "got boolean");
  expect_invalid(completion_error(completion({{"n", 0}})), "n", "between 1 and 16");
  expect_invalid(completion_error(completion({{"n", 17}})), "n", "between 1 and 16");
  expect_invalid(completion_error(completion({{"top_k", -2}})), "top_k", "between -1 and");
  EXPECT_EQ(parse_completion_request(completion({{"top_k", -1}})).params.sampling.top_k, 0);  // vLLM's "off"
  expect_invalid(completion_error(completion({{"seed", "x"}})), "seed", "must be an integer");
  EXPECT_EQ(parse_completion_request(completion({{"seed", -1}})).params.sampling.seed, ~uint64_t{0});
  expect_invalid(completion_error(completion({{"logprobs", 21}})), "logprobs", "between 0 and 20");
  expect_invalid(completion_error(completion({{"logprobs", true}})), "logprobs", "got boolean");
  expect_invalid(completion_error(completion({{"best_of", 2}})), "best_of", "not supported");
}

TEST(OpenAiRequest, NumberFields) {
  EXPECT_FLOAT_EQ(parse_completion_request(completion({{"temperature", 0}})).params.sampling.temperature, 0.0f);
  EXPECT_FLOAT_EQ(parse_completion_request(completion({{"temperature", 2}})).params.sampling.temperature, 2.0f);
  expect_invalid(completion_error(completion({{"temperature", 2.01}})), "temperature", "between 0 and 2");
  expect_invalid(completion_error(completion({{"temperature", -0.1}})), "temperature", "between 0 and 2");
  expect_invalid(completion_error(completion({{"temperature", "hot"}})), "temperature", "must be a number, got string");
  expect_invalid(completion_error(completion({{"top_p", 0}})), "top_p", "(0, 1]");
  expect_invalid(completion_error(completion({{"top_p", 1.5}})), "top_p", "between 0 and 1");
  expect_invalid(completion_error(completion({{"min_p", -0.5}})), "min_p", "between 0 and 1");
  expect_invalid(completion_error(completion({{"presence_penalty", 2.5}})), "presence_penalty", "between -2 and 2");
  expect_invalid(completion_error(completion({{"frequency_penalty", -3}})), "frequency_penalty", "between -2 and 2");
}

TEST(OpenAiRequest, StopStrings) {
  EXPECT_EQ(parse_completion_request(completion({{"stop", "x"}})).params.stop, std::vector<std::string>{"x"});
  EXPECT_TRUE(parse_completion_request(completion({{"stop", nullptr}})).params.stop.empty());
  json sixteen = json::array();
  for (int i = 0; i < 16; ++i) sixteen.push_back(std::string(1, static_cast<char>('a' + i)));
  EXPECT_EQ(parse_completion_request(completion({{"stop", sixteen}})).params.stop.size(), 16u);
  sixteen.push_back("one too many");
  expect_invalid(completion_error(completion({{"stop", sixteen}})), "stop", "at most 16");
  expect_invalid(completion_error(completion({{"stop", ""}})), "stop", "must not be empty");
  expect_invalid(completion_error(completion({{"stop", {"a", 1}}})), "stop", "must hold strings");
  expect_invalid(completion_error(completion({{"stop", 3}})), "stop", "string or an array");
}

TEST(OpenAiRequest, BooleansAndStreamOptions) {
  expect_invalid(completion_error(completion({{"stream", "yes"}})), "stream", "must be a boolean");
  expect_invalid(completion_error(completion({{"echo", 1}})), "echo", "must be a boolean");
  expect_invalid(completion_error(completion({{"ignore_eos", "no"}})), "ignore_eos", "must be a boolean");
  expect_invalid(completion_error(completion({{"stream_options", {{"include_usage", true}}}})), "stream_options",
                 "only allowed when 'stream' is true");
  expect_invalid(completion_error(completion({{"stream", true}, {"stream_options", 1}})), "stream_options",
                 "must be an object");
  expect_invalid(completion_error(completion({{"stream", true}, {"stream_options", {{"include_usage", 1}}}})),
                 "stream_options.include_usage", "must be a boolean");
  expect_invalid(completion_error(completion({{"model", 3}})), "model", "must be a string");
  expect_invalid(completion_error(completion({{"user", 3}})), "user", "must be a string");
  EXPECT_TRUE(parse_completion_request(completion({{"echo", true}})).echo);
  expect_invalid(completion_error(completion({{"echo", true}, {"logprobs", 1}})), "echo", "not supported");
}

TEST(OpenAiRequest, UnsupportedFieldsAreRefused) {
  expect_invalid(completion_error(completion({{"suffix", "x"}})), "suffix", "not supported");
  expect_invalid(completion_error(completion({{"logit_bias", {{"5", 1}}}})), "logit_bias", "not supported");
  expect_invalid(chat_error(chat({{"tools", json::array({{{"type", "function"}}})}})), "tools", "not supported");
  expect_invalid(chat_error(chat({{"response_format", {{"type", "json_object"}}}})), "response_format", "not supported");
  EXPECT_NO_THROW(parse_chat_request(chat({{"response_format", {{"type", "text"}}}})));
}

TEST(OpenAiRequest, ChatMessages) {
  const ChatRequest r = parse_chat_request(json{
      {"messages",
       {{{"role", "system"}, {"content", "be brief"}},
        {{"role", "user"}, {"content", json::array({{{"type", "text"}, {"text", "a"}}, {{"type", "text"}, {"text", "b"}}})}},
        {{"role", "assistant"}, {"content", "ok"}},
        {{"role", "developer"}, {"content", "dev"}}}}});
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[1].content, "a\nb");
  EXPECT_EQ(r.messages[2].role, "assistant");
  EXPECT_EQ(r.messages[3].role, "system");
  EXPECT_TRUE(r.add_generation_prompt);
}

TEST(OpenAiRequest, ChatMessageErrors) {
  expect_invalid(chat_error(json::object()), "messages", "required");
  expect_invalid(chat_error(json{{"messages", "hi"}}), "messages", "must be an array");
  expect_invalid(chat_error(json{{"messages", json::array()}}), "messages", "must not be empty");
  expect_invalid(chat_error(json{{"messages", {1}}}), "messages[0]", "must be an object");
  expect_invalid(chat_error(json{{"messages", {{{"content", "x"}}}}}), "messages[0].role", "must be a string");
  expect_invalid(chat_error(json{{"messages", {{{"role", "tool"}, {"content", "x"}}}}}), "messages[0].role",
                 "system, user or assistant");
  expect_invalid(chat_error(json{{"messages", {{{"role", "user"}}}}}), "messages[0].content", "required");
  expect_invalid(chat_error(json{{"messages", {{{"role", "user"}, {"content", 5}}}}}), "messages[0].content",
                 "string or an array");
  expect_invalid(chat_error(json{{"messages", {{{"role", "user"}, {"content", {{{"type", "image_url"}}}}}}}}),
                 "messages[0].content[0].type", "type \"text\"");
  expect_invalid(chat_error(json{{"messages", {{{"role", "user"}, {"content", {{{"type", "text"}}}}}}}}),
                 "messages[0].content[0].text", "text' is required");
  expect_invalid(chat_error(json{{"messages", {{{"role", "user"}, {"content", {{{"type", 1}, {"text", "x"}}}}}}}}),
                 "messages[0].content[0].type", "must be a string");
  expect_invalid(chat_error(json{{"messages", {{{"role", "user"}, {"content", {{{"type", "text"}, {"text", 1}}}}}}}}),
                 "messages[0].content[0].text", "must be a string");
}

TEST(OpenAiRequest, ChatFields) {
  ChatRequest r = parse_chat_request(chat({{"max_tokens", 5}, {"max_completion_tokens", 9}}));
  EXPECT_EQ(r.max_tokens, 9);  // the newer name wins
  r = parse_chat_request(chat({{"logprobs", true}, {"top_logprobs", 3}, {"add_generation_prompt", false}}));
  EXPECT_EQ(r.params.logprobs, 3);
  EXPECT_FALSE(r.add_generation_prompt);
  EXPECT_EQ(parse_chat_request(chat({{"logprobs", true}})).params.logprobs, 0);
  EXPECT_EQ(parse_chat_request(chat({{"logprobs", false}})).params.logprobs, -1);
  expect_invalid(chat_error(chat({{"top_logprobs", 3}})), "top_logprobs", "requires 'logprobs'");
  expect_invalid(chat_error(chat({{"logprobs", true}, {"top_logprobs", 21}})), "top_logprobs", "between 0 and 20");
  expect_invalid(chat_error(chat({{"logprobs", 2}})), "logprobs", "must be a boolean");
  expect_invalid(chat_error(chat({{"max_completion_tokens", -4}})), "max_completion_tokens", "between 1 and");
  expect_invalid(chat_error(chat({{"echo", true}})), "echo", "not supported");
}

TEST(JsonBody, MalformedAndOddBodies) {
  EXPECT_NO_THROW(parse_json_body(R"({"a": 1})"));
  // 1e400 overflows a double: nlohmann reports it as out_of_range, not as a parse error.
  for (const std::string body : {"", "{", "{\"a\": }", "not json", "{\"a\": 1} trailing", "{\"a\": 1e400}",
                                 "{\"a\": -1e400}", "{\"a\": \"\xff\"}", "{\"a\": \"\\ud800\"}"}) {
    try {
      parse_json_body(body);
      ADD_FAILURE() << "accepted: " << body;
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status(), 400);
      EXPECT_THAT(e.what(), ::testing::HasSubstr("not valid JSON"));
    }
  }
  try {
    parse_json_body("[1, 2]");
    ADD_FAILURE();
  } catch (const ApiError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("must be an object, got array"));
  }
  // Deep nesting is refused rather than built.
  std::string deep = "{\"a\":";
  deep.append(100000, '[');
  deep.append(100000, ']');
  deep.push_back('}');
  try {
    parse_json_body(deep);
    ADD_FAILURE();
  } catch (const ApiError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("nested deeper"));
  }
}

TEST(JsonBody, NestingIsCountedOutsideStringsOnly) {
  // 64 levels are fine, 65 are not; brackets inside strings (escaped quotes included) do not count.
  auto nested = [](int levels) {
    std::string body = "{\"a\":";
    body.append(static_cast<size_t>(levels - 1), '[');
    body.append(static_cast<size_t>(levels - 1), ']');
    return body + "}";
  };
  EXPECT_NO_THROW(parse_json_body(nested(64)));
  EXPECT_THROW(parse_json_body(nested(65)), ApiError);
  const std::string in_string = "{\"a\": \"\\\" " + std::string(1000, '[') + "\"}";
  EXPECT_EQ(parse_json_body(in_string)["a"].get<std::string>(), "\" " + std::string(1000, '['));
  // Thousands of small objects in one array parse in linear time (the parser's depth callback
  // made this quadratic); a body of them is what a long chat history looks like.
  std::string many = "{\"messages\": [";
  for (int i = 0; i < 50000; ++i) many += std::string(i ? "," : "") + "{\"role\":\"user\",\"content\":\"Hi\"}";
  many += "]}";
  EXPECT_EQ(parse_json_body(many)["messages"].size(), 50000u);
}

TEST(JsonBody, DumpReplacesInvalidUtf8) {
  EXPECT_EQ(dump_json(json{{"t", std::string("a\xff")}}), "{\"t\":\"a\xEF\xBF\xBD\"}");
}

}  // namespace
}  // namespace morphserve::server
