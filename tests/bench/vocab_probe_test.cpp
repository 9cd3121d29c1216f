// discover_vocab_size against small servers whose vocabulary the test chooses.
#include "bench/vocab_probe.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <string>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "bench/fake_openai_server.h"
#include "core/error.h"

namespace morphserve::bench {
namespace {

using ::testing::HasSubstr;

// /v1/models (optionally listing vocab_size) and a /v1/completions that refuses any prompt id at
// or beyond `vocab` with a 400, as OpenAI-style servers do; `status_for_all` overrides every answer.
class VocabServer {
 public:
  VocabServer(int64_t vocab, std::optional<int64_t> listed, int status_for_all = 0) {
    server_.Get("/v1/models", [listed](const httplib::Request&, httplib::Response& res) {
      nlohmann::json model = {{"id", "m"}, {"object", "model"}};
      if (listed) model["vocab_size"] = *listed;
      res.set_content(nlohmann::json{{"object", "list"}, {"data", {model}}}.dump(), "application/json");
    });
    server_.Post("/v1/completions", [this, vocab, status_for_all](const httplib::Request& req, httplib::Response& res) {
      ++completions_;
      const auto body = nlohmann::json::parse(req.body);
      int status = 200;
      for (const auto& id : body["prompt"]) status = id.get<int64_t>() >= vocab ? 400 : status;
      if (status_for_all != 0) status = status_for_all;
      res.status = status;
      res.set_content(status == 200 ? R"({"choices":[{"text":"x"}]})"
                                    : R"({"error":{"message":"token id out of vocabulary","type":"invalid_request_error"}})",
                      "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = testing::listen_in_background(server_);
  }
  ~VocabServer() {
    server_.stop();
    thread_.join();
  }
  ServerUrl url() const { return parse_server_url("http://127.0.0.1:" + std::to_string(port_)); }
  int completions() const { return completions_.load(); }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<int> completions_{0};
};

TEST(VocabProbe, ReadsTheListedVocabularyWithoutProbing) {
  VocabServer server(512, 512);
  const VocabSize v = discover_vocab_size(server.url(), "", "m", 32000);
  EXPECT_EQ(v.size, 512);
  EXPECT_THAT(v.how, HasSubstr("GET /v1/models"));
  EXPECT_EQ(server.completions(), 0);
  // A listed vocabulary above the cap is capped.
  VocabServer big(128256, 128256);
  EXPECT_EQ(discover_vocab_size(big.url(), "", "m", 32000).size, 32000);
}

TEST(VocabProbe, FindsTheVocabularyByBinarySearchWhenItIsNotListed) {
  for (const int64_t vocab : {1, 2, 777, 31999}) {
    VocabServer server(vocab, std::nullopt);
    const VocabSize v = discover_vocab_size(server.url(), "", "m", 32000);
    EXPECT_EQ(v.size, vocab);
    EXPECT_THAT(v.how, HasSubstr("probed"));
    EXPECT_LE(server.completions(), 18) << "a binary search over 32000 ids takes about 15 probes";
  }
}

TEST(VocabProbe, AVocabularyAtLeastTheCapIsTheCap) {
  VocabServer server(50000, std::nullopt);
  const VocabSize v = discover_vocab_size(server.url(), "", "m", 32000);
  EXPECT_EQ(v.size, 32000);
  EXPECT_EQ(server.completions(), 1);
}

TEST(VocabProbe, AServerThatCannotBeAskedSaysToGiveTheSizeByHand) {
  VocabServer refuses_everything(0, std::nullopt);
  try {
    discover_vocab_size(refuses_everything.url(), "", "m", 32000);
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("refuses even a prompt of token id 0"));
    EXPECT_THAT(e.what(), HasSubstr("--vocab-size"));
  }
  VocabServer broken(512, std::nullopt, 500);
  try {
    discover_vocab_size(broken.url(), "", "m", 32000);
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("HTTP 500"));
    EXPECT_THAT(e.what(), HasSubstr("--vocab-size"));
  }
  const ServerUrl nowhere = parse_server_url("http://127.0.0.1:" + std::to_string(testing::closed_port()));
  EXPECT_THROW(discover_vocab_size(nowhere, "", "m", 32000), InvalidArgument);
  VocabServer fine(512, 512);
  EXPECT_THROW(discover_vocab_size(fine.url(), "", "m", 0), InvalidArgument);
}

}  // namespace
}  // namespace morphserve::bench
