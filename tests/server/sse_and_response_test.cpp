// SSE framing and the JSON shapes of responses, chunks, usage and logprobs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "model/dummy_model.h"
#include "server/json_fields.h"
#include "server/openai_response.h"
#include "server/sse.h"
#include "test_backend.h"

namespace morphserve::server {
namespace {

using nlohmann::json;

TEST(Sse, EventFraming) {
  EXPECT_EQ(sse_event(json{{"a", 1}}), "data: {\"a\":1}\n\n");
  // Newlines in text are escaped, so an event is always one data line.
  EXPECT_EQ(sse_event(json{{"text", "x\ny"}}), "data: {\"text\":\"x\\ny\"}\n\n");
  EXPECT_EQ(sse_done(), "data: [DONE]\n\n");
  EXPECT_EQ(sse_comment("keep\nalive"), ": keep alive\n\n");
}

TEST(OpenAiResponse, Ids) {
  EXPECT_THAT(make_response_id(ApiKind::Completion), ::testing::StartsWith("cmpl-"));
  EXPECT_THAT(make_response_id(ApiKind::Chat), ::testing::StartsWith("chatcmpl-"));
  EXPECT_NE(make_response_id(ApiKind::Chat), make_response_id(ApiKind::Chat));
  EXPECT_GT(unix_time_now(), 1600000000);
}

TEST(OpenAiResponse, UsageAndFinishReasons) {
  EXPECT_EQ(usage_json(3, 4), (json{{"prompt_tokens", 3}, {"completion_tokens", 4}, {"total_tokens", 7}}));
  EXPECT_EQ(finish_reason_json(FinishReason::Stop), "stop");
  EXPECT_EQ(finish_reason_json(FinishReason::Length), "length");
  EXPECT_TRUE(finish_reason_json(std::nullopt).is_null());
  EXPECT_TRUE(finish_reason_json(FinishReason::Cancelled).is_null());
}

TEST(OpenAiResponse, WholeCompletionAndChat) {
  const ResponseHeader completion{ApiKind::Completion, "cmpl-1", 100, "m"};
  const json r = whole_response(completion, json::array({response_choice(ApiKind::Completion, 0, "hi", FinishReason::Length, nullptr)}),
                                usage_json(1, 2));
  EXPECT_EQ(r, (json{{"id", "cmpl-1"},
                     {"object", "text_completion"},
                     {"created", 100},
                     {"model", "m"},
                     {"choices", {{{"index", 0}, {"text", "hi"}, {"logprobs", nullptr}, {"finish_reason", "length"}}}},
                     {"usage", {{"prompt_tokens", 1}, {"completion_tokens", 2}, {"total_tokens", 3}}}}));
  const ResponseHeader chat{ApiKind::Chat, "chatcmpl-1", 100, "m"};
  const json c = whole_response(chat, json::array({response_choice(ApiKind::Chat, 0, "yo", FinishReason::Stop, nullptr)}),
                                usage_json(1, 1));
  EXPECT_EQ(c["object"], "chat.completion");
  EXPECT_EQ(c["choices"][0]["message"], (json{{"role", "assistant"}, {"content", "yo"}}));
  EXPECT_EQ(c["choices"][0]["finish_reason"], "stop");
}

TEST(OpenAiResponse, StreamChunks) {
  const ResponseHeader chat{ApiKind::Chat, "chatcmpl-1", 5, "m"};
  const json first = stream_chunk(chat, json::array({chunk_choice(ApiKind::Chat, 0, "", std::nullopt, nullptr, true)}), false);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"], (json{{"role", "assistant"}, {"content", ""}}));
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  EXPECT_FALSE(first.contains("usage"));
  const json middle = stream_chunk(chat, json::array({chunk_choice(ApiKind::Chat, 0, "ab", std::nullopt, nullptr)}), true);
  EXPECT_EQ(middle["choices"][0]["delta"], (json{{"content", "ab"}}));
  EXPECT_TRUE(middle["usage"].is_null());
  const json last = stream_chunk(chat, json::array({chunk_choice(ApiKind::Chat, 0, "", FinishReason::Stop, nullptr)}), false);
  EXPECT_EQ(last["choices"][0]["delta"], json::object());
  EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");
  const json usage = usage_chunk(chat, usage_json(2, 3));
  EXPECT_EQ(usage["choices"], json::array());
  EXPECT_EQ(usage["usage"]["total_tokens"], 5);

  const ResponseHeader completion{ApiKind::Completion, "cmpl-1", 5, "m"};
  const json text = stream_chunk(completion, json::array({chunk_choice(ApiKind::Completion, 1, "x", FinishReason::Length, nullptr)}), false);
  EXPECT_EQ(text["object"], "text_completion");
  EXPECT_EQ(text["choices"][0], (json{{"index", 1}, {"text", "x"}, {"logprobs", nullptr}, {"finish_reason", "length"}}));
}

TEST(OpenAiResponse, CompletionLogprobs) {
  const LlamaModel model = make_dummy_model("tiny", DType::F32, test_backend());
  // Byte tokens of the dummy vocabulary: id 3 + byte.
  const int32_t a = 3 + 'a', b = 3 + 'b';
  ChoiceLogprobs lp(ApiKind::Completion, model.tokenizer, 5);
  const json part = lp.add({GeneratedToken{a, -0.5f, {{a, -0.5f}, {b, -1.5f}}}});
  EXPECT_EQ(part["tokens"], json::array({"a"}));
  EXPECT_EQ(part["token_logprobs"], json::array({-0.5}));
  EXPECT_EQ(part["top_logprobs"], json::array({{{"a", -0.5}, {"b", -1.5}}}));
  EXPECT_EQ(part["text_offset"], json::array({5}));
  lp.add({GeneratedToken{b, -0.25f, {}}});
  EXPECT_EQ(lp.all()["tokens"], json::array({"a", "b"}));
  EXPECT_EQ(lp.all()["text_offset"], json::array({5, 6}));
  EXPECT_EQ(lp.all()["top_logprobs"][1], (json{{"b", -0.25}}));  // the chosen token is always listed
}

TEST(OpenAiResponse, ChatLogprobs) {
  const LlamaModel model = make_dummy_model("tiny", DType::F32, test_backend());
  const int32_t a = 3 + 'a', b = 3 + 'b';
  ChoiceLogprobs lp(ApiKind::Chat, model.tokenizer);
  const json part = lp.add({GeneratedToken{a, -0.5f, {{b, -1.0f}}}});
  EXPECT_EQ(part, (json{{"content",
                         {{{"token", "a"},
                           {"logprob", -0.5},
                           {"bytes", {97}},
                           {"top_logprobs", {{{"token", "b"}, {"logprob", -1.0}, {"bytes", {98}}}}}}}}}));
  lp.add({GeneratedToken{b, -0.75f, {}}});
  EXPECT_EQ(lp.all()["content"].size(), 2u);
}

}  // namespace
}  // namespace morphserve::server
