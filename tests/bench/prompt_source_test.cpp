#include "bench/prompt_source.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include "bench/fake_openai_server.h"
#include "core/error.h"

namespace morphserve::bench {
namespace {

using ::morphserve::testing::FakeOpenAiServer;
namespace fs = std::filesystem;

class PromptSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = fs::temp_directory_path() / ("morphserve_prompt_" + std::to_string(::getpid()) + ".txt");
    std::ofstream(path_) << text_;
  }
  void TearDown() override { fs::remove(path_); }

  std::string text_ = "Once upon a time there was a little dog who liked to run in the park every day.";
  fs::path path_;
};

TEST_F(PromptSourceTest, PseudoRandomIdsHaveTheExactLengthAndStayInTheVocabulary) {
  FakeOpenAiServer server;
  PromptSourceOptions o;
  o.vocab_size = 512;
  const PromptSource source = PromptSource::prepare(o, parse_server_url(server.url()), "", "fake-model");
  EXPECT_TRUE(source.exact());
  EXPECT_LT(source.max_token_id(), 512);
  for (int64_t n : {1, 3, 4, 17, 300}) {
    const std::vector<int32_t> ids = source.ids(5, n);
    ASSERT_EQ(ids.size(), static_cast<size_t>(n));
    for (int32_t id : ids) {
      EXPECT_GE(id, 100);
      EXPECT_LT(id, 512);
    }
  }
  EXPECT_EQ(source.prompt(2, 9).size(), 9u);
}

TEST_F(PromptSourceTest, EveryRequestStartsDifferently) {
  PromptSourceOptions o;
  const PromptSource source(std::vector<int32_t>(1000, 7), o);  // a stream where every window is alike
  std::set<std::vector<int32_t>> starts;
  for (size_t i = 0; i < 500; ++i) {
    const std::vector<int32_t> ids = source.ids(i, 64);
    starts.insert(std::vector<int32_t>(ids.begin(), ids.begin() + kPrefixTokens));
  }
  // One distinct id cannot spell a prefix; a two-id stream can.
  EXPECT_EQ(starts.size(), 1u);
  const PromptSource two(std::vector<int32_t>{7, 8}, o);
  starts.clear();
  for (size_t i = 0; i < 16; ++i) {
    const std::vector<int32_t> ids = two.ids(i, 64);
    starts.insert(std::vector<int32_t>(ids.begin(), ids.begin() + kPrefixTokens));
  }
  EXPECT_EQ(starts.size(), 16u);
}

TEST_F(PromptSourceTest, PromptsAreReproducibleFromTheSeed) {
  // The arms of an experiment must see identical requests; another seed gives other prompts.
  std::vector<int32_t> stream(5000);
  for (size_t i = 0; i < stream.size(); ++i) stream[i] = static_cast<int32_t>(100 + (i * 7919) % 400);
  PromptSourceOptions o;
  o.seed = 3;
  const PromptSource a(stream, o), b(stream, o);
  o.seed = 4;
  const PromptSource c(stream, o);
  for (size_t i = 0; i < 20; ++i) {
    EXPECT_EQ(a.ids(i, 50), b.ids(i, 50));
    EXPECT_NE(a.ids(i, 50), c.ids(i, 50));
  }
}

TEST_F(PromptSourceTest, WindowsOfTheStreamWrapAround) {
  PromptSourceOptions o;
  o.unique_prefix = false;
  const std::vector<int32_t> stream = {1, 2, 3, 4, 5};
  const PromptSource source(stream, o);
  const std::vector<int32_t> ids = source.ids(3, 12);
  ASSERT_EQ(ids.size(), 12u);
  for (size_t i = 1; i < ids.size(); ++i) EXPECT_EQ(ids[i], ids[i - 1] % 5 + 1);
}

TEST_F(PromptSourceTest, TokenizesTheTextWithVllmsRequestShape) {
  FakeOpenAiServer server({.tokenize = FakeOpenAiServer::TokenizeShape::Prompt});
  PromptSourceOptions o;
  o.text_path = path_.string();
  const PromptSource source = PromptSource::prepare(o, parse_server_url(server.url()), "", "fake-model");
  const auto expected = FakeOpenAiServer::ids_of(text_);
  const std::set<int> vocabulary(expected.begin(), expected.end());
  for (int32_t id : source.ids(1, 200)) EXPECT_TRUE(vocabulary.count(id)) << id;
  EXPECT_NE(source.description().find(std::to_string(text_.size()) + " tokens"), std::string::npos)
      << source.description();
}

TEST_F(PromptSourceTest, TokenizesTheTextWithLlamaServersRequestShape) {
  FakeOpenAiServer server({.tokenize = FakeOpenAiServer::TokenizeShape::Content});
  PromptSourceOptions o;
  o.text_path = path_.string();
  o.unique_prefix = false;
  const PromptSource source = PromptSource::prepare(o, parse_server_url(server.url()), "", "fake-model");
  const auto expected = FakeOpenAiServer::ids_of(text_);
  const std::vector<int32_t> ids = source.ids(0, 10);
  // A window of the stream, wrapping around.
  const auto start = std::find(expected.begin(), expected.end(), ids[0]);
  ASSERT_NE(start, expected.end());
  EXPECT_EQ(source.max_token_id(), *std::max_element(expected.begin(), expected.end()));
}

TEST_F(PromptSourceTest, TextModeDetokenizesWindowsBeforeTheRun) {
  FakeOpenAiServer server;
  PromptSourceOptions o;
  o.format = PromptFormat::Text;
  o.text_path = path_.string();
  PromptSource source = PromptSource::prepare(o, parse_server_url(server.url()), "", "fake-model");
  EXPECT_FALSE(source.exact());
  const Workload workload{"test", {{0.0, 20, 1}, {0.0, 7, 1}}};
  source.prepare_texts(workload, parse_server_url(server.url()), "", "fake-model");
  // The fake detokenizer writes one letter per id.
  EXPECT_EQ(source.prompt(0, 20).get<std::string>().size(), 20u);
  EXPECT_EQ(source.prompt(1, 7).get<std::string>().size(), 7u);
  EXPECT_NE(source.description().find("detokenized"), std::string::npos);
}

TEST_F(PromptSourceTest, TextModeWithoutATokenizerSlicesTheText) {
  PromptSourceOptions o;
  o.format = PromptFormat::Text;
  o.text_path = path_.string();
  // A server with neither /tokenize nor /detokenize.
  httplib::Server bare;
  const int port = bare.bind_to_any_port("127.0.0.1");
  std::thread thread = testing::listen_in_background(bare);
  const PromptSource source = PromptSource::prepare(o, parse_server_url("127.0.0.1:" + std::to_string(port)), "", "m");
  bare.stop();
  thread.join();
  const std::string prompt = source.prompt(3, 10).get<std::string>();
  EXPECT_GE(prompt.size(), 40u);  // about 4 characters a token
  EXPECT_LT(prompt.size(), 60u);
}

TEST_F(PromptSourceTest, IdsFromATextNeedTheServersTokenizer) {
  httplib::Server bare;
  const int port = bare.bind_to_any_port("127.0.0.1");
  std::thread thread = testing::listen_in_background(bare);
  PromptSourceOptions o;
  o.text_path = path_.string();
  EXPECT_THROW(PromptSource::prepare(o, parse_server_url("127.0.0.1:" + std::to_string(port)), "", "m"), InvalidArgument);
  bare.stop();
  thread.join();
}

TEST(PromptFormat, Parses) {
  EXPECT_EQ(parse_prompt_format("ids"), PromptFormat::Ids);
  EXPECT_EQ(parse_prompt_format("text"), PromptFormat::Text);
  EXPECT_THROW(parse_prompt_format("tokens"), InvalidArgument);
}

TEST(ServerUrl, Parses) {
  const ServerUrl a = parse_server_url("http://127.0.0.1:8080");
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 8080);
  EXPECT_EQ(a.base_path, "");
  const ServerUrl b = parse_server_url("localhost:9000/proxy/");
  EXPECT_EQ(b.host, "localhost");
  EXPECT_EQ(b.port, 9000);
  EXPECT_EQ(b.base_path, "/proxy");
  EXPECT_EQ(b.str(), "http://localhost:9000/proxy");
  EXPECT_EQ(parse_server_url("http://example.com").port, 80);
  EXPECT_EQ(parse_server_url("https://example.com").port, 443);
  EXPECT_EQ(parse_server_url("http://[::1]:81").host, "::1");
  EXPECT_THROW(parse_server_url("http://host:notaport"), InvalidArgument);
  EXPECT_THROW(parse_server_url("ftp://host:1"), InvalidArgument);
  EXPECT_THROW(parse_server_url("http://:80"), InvalidArgument);
}

}  // namespace
}  // namespace morphserve::bench
