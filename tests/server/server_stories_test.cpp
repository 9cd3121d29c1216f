// The real server with the real model (stories260K): greedy output equals the llama2.c reference,
// stop strings cut real text, and streaming and whole responses agree.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "server_process.h"

namespace morphserve::testing {
namespace {

using nlohmann::json;

std::string replica_path(const std::string& name) {
  return (std::filesystem::path(::testing::TempDir()) / (name + ".replicas.gguf")).string();
}

class StoriesServer : public ::testing::Test {
 protected:
  void SetUp() override {
    MORPHSERVE_REQUIRE_DATA(model, "models/stories260K.gguf");
    MORPHSERVE_REQUIRE_DATA(reference, "models/reference/stories260K.greedy.json");
    std::ifstream in(reference);
    reference_ = json::parse(in);
    // Replicas go to the test's temporary folder, never beside the shared model.
    server_ = std::make_unique<ServerProcess>(std::vector<std::string>{
        "-m", model.string(), "--served-model-name", "stories", "--replicas", replica_path("server_stories")});
    ASSERT_TRUE(server_->wait_ready());
  }
  void TearDown() override {
    if (server_) {
      EXPECT_EQ(server_->terminate(), 0) << server_->stderr_text();
    }
  }
  Reply post(const std::string& path, const json& body) {
    auto c = server_->client();
    return post_json(*c, path, body);
  }
  json reference_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(StoriesServer, GreedyCompletionMatchesReference) {
  const json& ref = reference_["cases"][1];
  ASSERT_EQ(ref["prompt"], "Once upon a time");
  const std::string prompt = ref["prompt"];
  const std::string full = ref["text"];
  const std::string expected = full.substr(prompt.size());
  const json request = {{"model", "stories"},
                        {"prompt", prompt},
                        {"max_tokens", ref["generated_ids"].size()},
                        {"temperature", 0},
                        {"ignore_eos", true}};
  const Reply r = post("/v1/completions", request);
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = r.json();
  EXPECT_EQ(j["choices"][0]["text"], expected);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["prompt_tokens"], ref["prompt_ids"].size());
  EXPECT_EQ(j["usage"]["completion_tokens"], ref["generated_ids"].size());

  // The prompt as the reference's token ids gives the same text; so does a stream.
  json by_ids = request;
  by_ids["prompt"] = ref["prompt_ids"];
  EXPECT_EQ(post("/v1/completions", by_ids).json()["choices"][0]["text"], expected);
  json streamed = request;
  streamed["stream"] = true;
  std::string text;
  for (const std::string& e : sse_payloads(post("/v1/completions", streamed).body)) {
    if (e != "[DONE]") text += json::parse(e)["choices"][0]["text"].get<std::string>();
  }
  EXPECT_EQ(text, expected);
}

TEST_F(StoriesServer, StopStringsCutRealText) {
  const json request = {{"prompt", "Once upon a time"}, {"max_tokens", 64}, {"temperature", 0},
                        {"stop", {"Lily", "never"}}};
  const Reply r = post("/v1/completions", request);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["choices"][0]["text"], ", there was a little girl named ");
  EXPECT_EQ(r.json()["choices"][0]["finish_reason"], "stop");

  json multi = request;
  multi["stop"] = {"girl", "little"};  // the earliest occurrence wins
  EXPECT_EQ(post("/v1/completions", multi).json()["choices"][0]["text"], ", there was a ");
}

TEST_F(StoriesServer, ChatAndTokenize) {
  const Reply chat = post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "Tell a story"}}}},
                                                   {"max_tokens", 8},
                                                   {"temperature", 0}});
  ASSERT_EQ(chat.status, 200) << chat.body;
  EXPECT_TRUE(chat.json()["choices"][0]["message"]["content"].is_string());
  const Reply t = post("/tokenize", {{"prompt", "Once upon a time"}});
  EXPECT_EQ(t.json()["tokens"], reference_["cases"][1]["prompt_ids"]);
  auto models = server_->client()->Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(t.json()["max_model_len"], json::parse(models->body)["data"][0]["max_model_len"]);
}

// A forced family renders the conversation and tokenizes it with special tokens parsed: the prompt
// is exactly the rendered text's tokens, with the template's BOS and no second one.
TEST(StoriesServerChatTemplate, ForcedLlama2Template) {
  MORPHSERVE_REQUIRE_DATA(model, "models/stories260K.gguf");
  ServerProcess server({"-m", model.string(), "--chat-template", "llama2", "--replicas", replica_path("chat_llama2")});
  ASSERT_TRUE(server.wait_ready());
  auto c = server.client();
  const Reply chat = post_json(*c, "/v1/chat/completions",
                               json{{"messages", {{{"role", "system"}, {"content", "Be kind."}},
                                                  {{"role", "user"}, {"content", "Tell a story"}}}},
                                    {"max_tokens", 4},
                                    {"temperature", 0}});
  ASSERT_EQ(chat.status, 200) << chat.body;
  const Reply tokens = post_json(*c, "/tokenize",
                                 json{{"prompt", "<s>[INST] <<SYS>>\nBe kind.\n<</SYS>>\n\nTell a story [/INST]"},
                                      {"add_special_tokens", false}});
  ASSERT_EQ(tokens.status, 200);
  EXPECT_EQ(tokens.json()["tokens"][0], 1);  // "<s>" became BOS
  EXPECT_EQ(chat.json()["usage"]["prompt_tokens"], tokens.json()["count"]);
  // Roles out of turn are the template's 400.
  const Reply bad = post_json(*c, "/v1/chat/completions",
                              json{{"messages", {{{"role", "assistant"}, {"content", "x"}}}}, {"max_tokens", 2}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(json::parse(bad.body)["error"]["message"].get<std::string>(), ::testing::HasSubstr("alternate"));
  EXPECT_EQ(server.terminate(), 0);
}

}  // namespace
}  // namespace morphserve::testing
