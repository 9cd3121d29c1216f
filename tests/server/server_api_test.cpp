// The real server (dummy:tiny) driven over HTTP: every endpoint, both response shapes, streaming,
// stop strings and the 400/404/405 errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "server_process.h"

namespace morphserve::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

class ServerApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new ServerProcess({"-m", "dummy:tiny", "--max-model-len", "256"});
    ASSERT_TRUE(server_->wait_ready());
  }
  static void TearDownTestSuite() {
    EXPECT_EQ(server_->terminate(), 0) << server_->stderr_text();
    delete server_;
    server_ = nullptr;
  }
  static Reply post(const std::string& path, const json& body) {
    auto c = server_->client();
    return post_json(*c, path, body);
  }
  static void expect_error(const Reply& r, int status, const std::string& param, const std::string& message_part) {
    EXPECT_EQ(r.status, status) << r.body;
    const json body = json::parse(r.body);
    ASSERT_TRUE(body.contains("error")) << r.body;
    EXPECT_TRUE(body["error"]["type"].is_string());
    EXPECT_THAT(body["error"]["message"].get<std::string>(), HasSubstr(message_part));
    if (param.empty()) {
      EXPECT_TRUE(body["error"]["param"].is_null()) << r.body;
    } else {
      EXPECT_EQ(body["error"]["param"], param) << r.body;
    }
  }
  static inline ServerProcess* server_ = nullptr;
};

TEST_F(ServerApi, HealthModelsAndMetrics) {
  auto c = server_->client();
  auto health = c->Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(json::parse(health->body), (json{{"status", "ok"}}));

  auto models = c->Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 200);
  const json m = json::parse(models->body);
  EXPECT_EQ(m["object"], "list");
  ASSERT_EQ(m["data"].size(), 1u);
  EXPECT_EQ(m["data"][0]["id"], "dummy:tiny");
  EXPECT_EQ(m["data"][0]["object"], "model");
  EXPECT_EQ(m["data"][0]["max_model_len"], 256);
  EXPECT_EQ(m["data"][0]["vocab_size"], 512);

  auto metrics = c->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_THAT(metrics->get_header_value("Content-Type"), HasSubstr("text/plain"));
  for (const char* name : {"num_requests_running", "num_requests_waiting", "kv_cache_usage_perc", "num_preemptions_total",
                           "prompt_tokens_total", "generation_tokens_total", "request_success_total", "kv_blocks_total",
                           "kv_blocks_used", "time_to_first_token_seconds", "inter_token_latency_seconds",
                           "e2e_request_latency_seconds", "request_queue_time_seconds"}) {
    EXPECT_THAT(metrics->body, HasSubstr(std::string("# TYPE morphserve:") + name)) << name;
  }
  EXPECT_GT(metric_value(metrics->body, "morphserve:kv_blocks_total"), 0.0);
  EXPECT_THAT(metrics->body, HasSubstr("morphserve:time_to_first_token_seconds_bucket{model_name=\"dummy:tiny\",le=\"+Inf\"}"));
}

TEST_F(ServerApi, TokenizeAndDetokenize) {
  Reply r = post("/tokenize", {{"prompt", "hi"}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json t = r.json();
  EXPECT_EQ(t["tokens"].front(), 1);  // BOS
  EXPECT_EQ(t["count"], t["tokens"].size());
  EXPECT_EQ(t["max_model_len"], 256);
  r = post("/tokenize", {{"prompt", "hi"}, {"add_special_tokens", false}});
  EXPECT_EQ(r.json()["count"], t["count"].get<int>() - 1);
  r = post("/detokenize", {{"tokens", t["tokens"]}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["prompt"], "hi");

  expect_error(post("/tokenize", json::object()), 400, "prompt", "required");
  expect_error(post("/detokenize", {{"tokens", {1, 99999}}}), 400, "tokens", "between 0 and 511");
  expect_error(post("/detokenize", {{"tokens", "x"}}), 400, "tokens", "must be an array");
}

TEST_F(ServerApi, CompletionWholeResponse) {
  const Reply r = post("/v1/completions", {{"model", "dummy:tiny"}, {"prompt", "Hello"}, {"max_tokens", 5}, {"temperature", 0}, {"ignore_eos", true}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.headers.find("Content-Type")->second, HasSubstr("application/json"));
  const json j = r.json();
  EXPECT_THAT(j["id"].get<std::string>(), ::testing::StartsWith("cmpl-"));
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_TRUE(j["created"].is_number_integer());
  EXPECT_EQ(j["model"], "dummy:tiny");
  ASSERT_EQ(j["choices"].size(), 1u);
  EXPECT_EQ(j["choices"][0]["index"], 0);
  EXPECT_TRUE(j["choices"][0]["text"].is_string());
  EXPECT_TRUE(j["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  const json prompt = post("/tokenize", {{"prompt", "Hello"}}).json();
  EXPECT_EQ(j["usage"], (json{{"prompt_tokens", prompt["count"]}, {"completion_tokens", 5},
                              {"total_tokens", prompt["count"].get<int>() + 5}}));

  // The same prompt as token ids (plain and wrapped in a one-prompt batch) gives the same greedy text.
  for (const json& ids : {prompt["tokens"], json::array({prompt["tokens"]})}) {
    const Reply same =
        post("/v1/completions", {{"prompt", ids}, {"max_tokens", 5}, {"temperature", 0}, {"ignore_eos", true}});
    ASSERT_EQ(same.status, 200) << same.body;
    EXPECT_EQ(same.json()["choices"][0]["text"], j["choices"][0]["text"]);
  }
}

TEST_F(ServerApi, CompletionChoicesLogprobsAndEcho) {
  Reply r = post("/v1/completions",
                 {{"prompt", "Hello"}, {"max_tokens", 4}, {"n", 3}, {"seed", 7}, {"temperature", 1.0}, {"logprobs", 2}, {"ignore_eos", true}});
  ASSERT_EQ(r.status, 200) << r.body;
  json j = r.json();
  ASSERT_EQ(j["choices"].size(), 3u);
  EXPECT_EQ(j["usage"]["completion_tokens"], 12);
  for (int i = 0; i < 3; ++i) {
    const json& c = j["choices"][i];
    EXPECT_EQ(c["index"], i);
    const json& lp = c["logprobs"];
    ASSERT_EQ(lp["tokens"].size(), 4u) << c;
    EXPECT_EQ(lp["token_logprobs"].size(), 4u);
    EXPECT_EQ(lp["text_offset"][0], 0);
    for (const json& top : lp["top_logprobs"]) EXPECT_GE(top.size(), 1u);
    for (const json& v : lp["token_logprobs"]) EXPECT_LE(v.get<double>(), 0.0);
  }
  // Seeds make the result reproducible.
  const Reply again = post("/v1/completions",
                           {{"prompt", "Hello"}, {"max_tokens", 4}, {"n", 3}, {"seed", 7}, {"temperature", 1.0}, {"logprobs", 2}, {"ignore_eos", true}});
  for (int i = 0; i < 3; ++i) EXPECT_EQ(again.json()["choices"][i]["text"], j["choices"][i]["text"]);

  r = post("/v1/completions", {{"prompt", "Hello"}, {"max_tokens", 3}, {"echo", true}, {"temperature", 0}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.json()["choices"][0]["text"].get<std::string>(), ::testing::StartsWith("Hello"));
}

TEST_F(ServerApi, ChatWholeResponse) {
  const Reply r = post("/v1/chat/completions", {{"messages", {{{"role", "system"}, {"content", "Be brief."}},
                                                              {{"role", "user"}, {"content", "Hi"}}}},
                                                {"max_completion_tokens", 4},
                                                {"ignore_eos", true},
                                                {"temperature", 0},
                                                {"logprobs", true},
                                                {"top_logprobs", 2}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = r.json();
  EXPECT_THAT(j["id"].get<std::string>(), ::testing::StartsWith("chatcmpl-"));
  EXPECT_EQ(j["object"], "chat.completion");
  const json& c = j["choices"][0];
  EXPECT_EQ(c["message"]["role"], "assistant");
  EXPECT_TRUE(c["message"]["content"].is_string());
  EXPECT_EQ(c["finish_reason"], "length");
  ASSERT_EQ(c["logprobs"]["content"].size(), 4u);
  EXPECT_EQ(c["logprobs"]["content"][0]["top_logprobs"].size(), 2u);
  EXPECT_EQ(j["usage"]["completion_tokens"], 4);
  EXPECT_GT(j["usage"]["prompt_tokens"].get<int>(), 10);
}

TEST_F(ServerApi, CompletionStreamMatchesWholeResponse) {
  const json request = {{"prompt", "Hello"}, {"max_tokens", 12}, {"temperature", 0}, {"ignore_eos", true}};
  const std::string whole = post("/v1/completions", request).json()["choices"][0]["text"];
  json streamed = request;
  streamed["stream"] = true;
  streamed["stream_options"] = {{"include_usage", true}};
  const Reply r = post("/v1/completions", streamed);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.headers.find("Content-Type")->second, HasSubstr("text/event-stream"));
  const std::vector<std::string> events = sse_payloads(r.body);
  ASSERT_GE(events.size(), 3u) << r.body;
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text;
  std::string finish;
  for (size_t i = 0; i + 2 < events.size(); ++i) {
    const json chunk = json::parse(events[i]);
    EXPECT_EQ(chunk["object"], "text_completion");
    EXPECT_TRUE(chunk.contains("usage") && chunk["usage"].is_null());
    ASSERT_EQ(chunk["choices"].size(), 1u);
    text += chunk["choices"][0]["text"].get<std::string>();
    if (!chunk["choices"][0]["finish_reason"].is_null()) finish = chunk["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(text, whole);
  EXPECT_EQ(finish, "length");
  const json usage = json::parse(events[events.size() - 2]);
  EXPECT_EQ(usage["choices"], json::array());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 12);
}

TEST_F(ServerApi, ChatStream) {
  const Reply r = post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "Hi"}}}},
                                                {"max_tokens", 6},
                                                {"temperature", 0},
                                                {"ignore_eos", true},
                                                {"stream", true}});
  ASSERT_EQ(r.status, 200) << r.body;
  const std::vector<std::string> events = sse_payloads(r.body);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  const json first = json::parse(events.front());
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  const json last = json::parse(events[events.size() - 2]);
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  EXPECT_FALSE(last.contains("usage"));
  for (size_t i = 1; i + 1 < events.size(); ++i) EXPECT_FALSE(json::parse(events[i])["choices"][0]["delta"].contains("role"));
}

TEST_F(ServerApi, StopStringEndsTheCompletionBeforeIt) {
  const json request = {{"prompt", "Hello"}, {"max_tokens", 40}, {"temperature", 0}, {"ignore_eos", true}};
  const std::string text = post("/v1/completions", request).json()["choices"][0]["text"];
  // Random weights write arbitrary bytes: stop at the first ASCII character after the start.
  size_t at = std::string::npos;
  for (size_t i = 1; i < text.size() && at == std::string::npos; ++i) {
    if (static_cast<unsigned char>(text[i]) < 0x80) at = i;
  }
  if (at == std::string::npos) GTEST_SKIP() << "the greedy text has no ASCII character to stop at";
  const std::string stop(1, text[at]);
  for (bool stream : {false, true}) {
    json with_stop = request;
    with_stop["stop"] = json::array({stop, "never-occurs"});
    with_stop["stream"] = stream;
    const Reply r = post("/v1/completions", with_stop);
    ASSERT_EQ(r.status, 200) << r.body;
    std::string got;
    std::string finish;
    if (stream) {
      for (const std::string& e : sse_payloads(r.body)) {
        if (e == "[DONE]") continue;
        const json c = json::parse(e);
        got += c["choices"][0]["text"].get<std::string>();
        if (!c["choices"][0]["finish_reason"].is_null()) finish = c["choices"][0]["finish_reason"];
      }
    } else {
      got = r.json()["choices"][0]["text"];
      finish = r.json()["choices"][0]["finish_reason"];
    }
    EXPECT_EQ(got, text.substr(0, text.find(stop))) << "stream=" << stream;
    EXPECT_EQ(finish, "stop");
  }
}

TEST_F(ServerApi, InvalidRequestsAre400) {
  auto c = server_->client();
  expect_error(post_json(*c, "/v1/completions", std::string("{not json")), 400, "", "not valid JSON");
  expect_error(post_json(*c, "/v1/completions", std::string("[1]")), 400, "", "must be an object");
  expect_error(post("/v1/completions", {{"prompt", "x"}, {"model", "gpt-4"}}), 400, "model", "does not exist");
  expect_error(post("/v1/completions", {{"prompt", "x"}, {"max_tokens", -1}}), 400, "max_tokens", "between 1 and");
  expect_error(post("/v1/completions", {{"prompt", "x"}, {"temperature", 3}}), 400, "temperature", "between 0 and 2");
  expect_error(post("/v1/completions", {{"prompt", "x"}, {"temperature", "hot"}}), 400, "temperature", "must be a number");
  expect_error(post("/v1/completions", {{"prompt", ""}}), 400, "prompt", "must not be empty");
  expect_error(post("/v1/completions", {{"prompt", {1, 600}}}), 400, "prompt", "outside the vocabulary");
  expect_error(post("/v1/completions", {{"prompt", {"a", "b"}}}), 400, "prompt", "batches");
  expect_error(post("/v1/completions", {{"prompt", "x"}, {"max_tokens", 300}}), 400, "max_tokens",
               "maximum context length is 256");
  // Near INT64_MAX: the length check must not overflow into accepting the request.
  expect_error(post("/v1/completions", {{"prompt", "x"}, {"max_tokens", INT64_MAX}}), 400, "max_tokens",
               "maximum context length is 256");
  expect_error(post("/v1/completions", {{"prompt", "x"}, {"max_tokens", INT64_MAX - 1}}), 400, "max_tokens",
               "maximum context length is 256");
  expect_error(post("/v1/completions", {{"prompt", std::string(400, 'a')}}), 400, "prompt", "maximum context length");
  expect_error(post("/v1/completions", {{"prompt", "x"}, {"stop", ""}}), 400, "stop", "must not be empty");
  expect_error(post("/v1/chat/completions", {{"messages", json::array()}}), 400, "messages", "must not be empty");
  expect_error(post("/v1/chat/completions", {{"messages", {{{"role", "robot"}, {"content", "x"}}}}}), 400,
               "messages[0].role", "system, user or assistant");
  // A server that refused bad input keeps serving good input.
  EXPECT_EQ(post("/v1/completions", {{"prompt", "x"}, {"max_tokens", 2}}).status, 200);
}

TEST_F(ServerApi, UnknownRoutesAndMethods) {
  auto c = server_->client();
  auto r = c->Get("/v1/nothing");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_TRUE(json::parse(r->body).contains("error"));
  r = c->Get("/v1/completions");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->get_header_value("Allow"), "POST");
  EXPECT_THAT(json::parse(r->body)["error"]["message"].get<std::string>(), HasSubstr("not allowed"));
  r = c->Post("/health", "{}", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
}

// Mangled bodies (deleted, inserted and duplicated bytes, invalid UTF-8) get a 200 or a 400, never
// a 500 or a dropped connection, and the server keeps serving.
TEST_F(ServerApi, MangledBodiesAreRefusedCleanly) {
  const std::vector<std::pair<std::string, std::string>> seeds = {
      {"/v1/completions", R"({"prompt":"Hi there","max_tokens":2,"temperature":0,"stop":["x"],"n":2,"logprobs":1})"},
      {"/v1/completions", R"({"prompt":[1,72,105],"max_tokens":2,"stream":true,"stream_options":{"include_usage":true}})"},
      {"/v1/chat/completions",
       R"({"messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]}],"max_tokens":2,"top_logprobs":2,"logprobs":true})"},
      {"/tokenize", R"({"prompt":"Hello","add_special_tokens":false})"},
      {"/detokenize", R"({"tokens":[1,72,105]})"},
  };
  std::mt19937 rng(42);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % std::max<size_t>(n, 1)); };
  const std::string alphabet = "{}[]\",:0123456789-.eE truefalsnul\\\x80\xff\xc3";
  auto c = server_->client();
  for (int i = 0; i < 300; ++i) {
    const auto& [path, seed] = seeds[static_cast<size_t>(i) % seeds.size()];
    std::string body = seed;
    for (int edits = 1 + static_cast<int>(pick(3)); edits > 0; --edits) {
      const size_t at = pick(body.size());
      switch (pick(3)) {
        case 0: body.erase(at, 1 + pick(4)); break;
        case 1: body.insert(at, 1, alphabet[pick(alphabet.size())]); break;
        default: body.insert(at, body.substr(pick(body.size()), pick(8))); break;
      }
    }
    const Reply r = post_json(*c, path, body);
    ASSERT_TRUE(r.status == 200 || r.status == 400) << "status " << r.status << " (" << r.error << ") for " << path
                                                     << " " << body << "\n" << r.body;
  }
  EXPECT_EQ(c->Get("/health")->status, 200);
}

}  // namespace
}  // namespace morphserve::testing
