// The real server (dummy:tiny) against hostile and broken clients: truncated, oversized, malformed
// and mistyped bodies, absurd values, slow-loris connections, and streams dropped mid-response.
// Each gets its 4xx with OpenAI's error JSON (or a clean cancel), and afterwards the server is
// healthy, idle, and back to the memory it had after warming up.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "raw_connection.h"
#include "sanitizers.h"
#include "server_process.h"

namespace morphserve::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

constexpr auto kReadTimeout = 2s;      // the server's --read-timeout here
constexpr size_t kMaxBody = 4u << 20;  // its --max-body-bytes (the default)

double aborted(const std::string& text) {
  return model_metric(text, "dummy:tiny", "request_success_total", "finished_reason=\"abort\"");
}
bool engine_idle(const std::string& text) {
  return model_metric(text, "dummy:tiny", "num_requests_running") == 0 &&
         model_metric(text, "dummy:tiny", "num_requests_waiting") == 0 &&
         model_metric(text, "dummy:tiny", "kv_blocks_used") == 0;
}

// The OpenAI error shape with this status; param, when given, must name the field (or a part of it).
void expect_api_error(int status, const std::string& body, int expected, const std::string& param = "") {
  EXPECT_EQ(status, expected) << body.substr(0, 300);
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception&) {
    ADD_FAILURE() << "not JSON: " << body.substr(0, 300);
    return;
  }
  ASSERT_TRUE(j.contains("error") && j["error"].is_object()) << body.substr(0, 300);
  const json& e = j["error"];
  EXPECT_TRUE(e["message"].is_string());
  EXPECT_TRUE(e["type"].is_string());
  EXPECT_TRUE(e.contains("param") && e.contains("code"));
  if (!param.empty()) {
    ASSERT_TRUE(e["param"].is_string()) << body.substr(0, 300);
    const std::string p = e["param"];
    EXPECT_TRUE(p == param || p.rfind(param + "[", 0) == 0 || p.rfind(param + ".", 0) == 0)
        << "param " << p << " does not name " << param;
  }
}

class HostileClient : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // With the mmap threshold fixed, glibc hands every large freed buffer (bodies, prompts) back
    // to the system at once instead of caching it per thread, so the memory check below measures
    // what the server still holds rather than what the allocator keeps for later.
    server_ = new ServerProcess({"-m", "dummy:tiny", "--morph", "off", "--read-timeout", "2s"}, 60s,
                                {"MALLOC_MMAP_THRESHOLD_=131072", "MALLOC_TRIM_THRESHOLD_=131072"});
    ASSERT_TRUE(server_->wait_ready());
  }
  static void TearDownTestSuite() {
    EXPECT_EQ(server_->terminate(), 0) << server_->stderr_text();
    delete server_;
    server_ = nullptr;
  }
  // Every test leaves the server healthy and idle.
  void TearDown() override {
    auto c = server_->client(10s);
    auto health = c->Get("/health");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
    std::string text;
    EXPECT_TRUE(wait_for_metrics(*server_, engine_idle, 10s, &text)) << text;
  }

  static RawResponse exchange(const std::string& request, std::chrono::milliseconds timeout = 10s) {
    RawConnection conn(server_->port());
    conn.send(request);
    return conn.read_response(timeout);
  }
  static Reply post(const std::string& path, const json& body) {
    auto c = server_->client();
    return post_json(*c, path, body);
  }
  static std::string metrics() {
    auto c = server_->client(10s);
    auto r = c->Get("/metrics");
    return r ? r->body : "";
  }

  static inline ServerProcess* server_ = nullptr;
};

TEST_F(HostileClient, TruncatedBodies) {
  const double prompts_before = model_metric(metrics(), "dummy:tiny", "prompt_tokens_total");
  const std::string head = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           "Content-Length: 1000\r\n\r\n";
  const std::string start = R"({"prompt": "Hel)";
  {  // Less than Content-Length, then the end of the input: 400.
    RawConnection conn(server_->port());
    conn.send(head + start);
    conn.shutdown_write();
    const RawResponse r = conn.read_response(5s);
    expect_api_error(r.status, r.body, 400);
    EXPECT_TRUE(conn.wait_closed(3s));
  }
  {  // Less than Content-Length, then silence: 408 once the read timeout has passed.
    RawConnection conn(server_->port());
    const auto sent = Clock::now();
    conn.send(head + start);
    const RawResponse r = conn.read_response(kReadTimeout + 5s);
    expect_api_error(r.status, r.body, 408);
    EXPECT_THAT(r.body, HasSubstr("--read-timeout"));
    EXPECT_GE(Clock::now() - sent, kReadTimeout - 100ms);
    EXPECT_TRUE(conn.wait_closed(3s));
  }
  {  // Less than Content-Length, then gone: nothing to answer, nothing left behind.
    RawConnection conn(server_->port());
    conn.send(head + start);
    conn.close();
  }
  {  // A chunked body cut off in a chunk.
    RawConnection conn(server_->port());
    conn.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n100\r\n" + start);
    conn.shutdown_write();
    const RawResponse r = conn.read_response(5s);
    expect_api_error(r.status, r.body, 400);
  }
  // JSON cut mid-way with a Content-Length that matches: a 400 naming the JSON error.
  for (const std::string cut : {R"({"prompt": "Hello", "max_tok)", R"({"prompt": "Hel)", R"({"prompt": )", "{"}) {
    const RawResponse r = exchange(http_post("/v1/completions", cut));
    expect_api_error(r.status, r.body, 400);
    EXPECT_EQ(json::parse(r.body)["error"]["code"], "invalid_json") << cut;
  }
  // None of them reached the engine.
  EXPECT_EQ(model_metric(metrics(), "dummy:tiny", "prompt_tokens_total"), prompts_before);
}

TEST_F(HostileClient, OversizedRequests) {
  {  // A body over --max-body-bytes, sent whole: 413 once the server has skipped it.
    const RawResponse r = exchange(http_post("/v1/completions", std::string(kMaxBody + 4096, ' ')));
    expect_api_error(r.status, r.body, 413);
    EXPECT_THAT(r.body, HasSubstr("--max-body-bytes"));
  }
  // A Content-Length over the limit, then silence (a client waiting for an answer before it
  // sends): 413 at once, not after the read timeout, and the connection closed. The deadline is
  // the read timeout itself: a 413 sent only when the server gave up waiting would arrive after it.
  for (const std::string& length : {std::to_string(kMaxBody + 1), std::string("1000000000000"),
                                   std::string("99999999999999999999999")}) {
    RawConnection conn(server_->port());
    conn.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + "\r\n\r\n{\"prompt\"");
    const RawResponse r = conn.read_response(kReadTimeout - 500ms);
    expect_api_error(r.status, r.body, 413);
    EXPECT_THAT(r.body, HasSubstr("--max-body-bytes")) << length;
    EXPECT_THAT(r.head, HasSubstr("Connection: close")) << length;
  }
  // What the server would have to hold in memory to find the end: a chunked body, a header line,
  // a flood of headers. Each is refused at its limit; the sender may find the connection closed.
  auto refused_while_sending = [](const std::string& head, const std::string& piece, size_t pieces) {
    RawConnection conn(server_->port());
    conn.send(head);
    std::thread sender([&] {
      for (size_t i = 0; i < pieces && conn.send(piece); ++i) {
      }
    });
    RawResponse r = conn.read_response(10s);
    sender.join();
    return r;
  };
  const std::string chunk(64 * 1024, 'a');
  RawResponse r = refused_while_sending("POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                                        "10000\r\n" + chunk + "\r\n", 8 * kMaxBody / chunk.size());
  expect_api_error(r.status, r.body, 413);
  EXPECT_THAT(r.body, HasSubstr("--max-body-bytes"));
  r = refused_while_sending("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ", chunk, 32);
  expect_api_error(r.status, r.body, 431);
  r = refused_while_sending("GET /health HTTP/1.1\r\nHost: x\r\n", "X-Many: " + std::string(90, 'b') + "\r\n", 20000);
  expect_api_error(r.status, r.body, 431);
  // A chunked body within the limit is fine.
  const std::string body = json{{"prompt", "Hi"}, {"max_tokens", 2}}.dump();
  r = exchange("POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
               fmt::format("{:x}\r\n{}\r\n0\r\n\r\n", body.size(), body));
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(HostileClient, MalformedBodies) {
  struct Case {
    std::string name;
    std::string body;
    std::string content_type = "application/json";
  };
  std::string nested_objects;
  for (int i = 0; i < 100000; ++i) nested_objects += "{\"a\":";
  const std::vector<Case> cases = {
      {"empty", ""},
      {"100000 [", std::string(100000, '[')},
      {"100000 {", nested_objects},
      {"invalid UTF-8 in a string", "{\"prompt\": \"a\xff\xfe b\", \"max_tokens\": 2}"},
      {"overlong UTF-8", "{\"prompt\": \"\xc0\xaf\"}"},
      {"truncated UTF-8", "{\"prompt\": \"\xe2\x82\"}"},
      {"lone surrogate escape", R"({"prompt": "\ud800x"})"},
      {"a number beyond double", R"({"prompt": "x", "max_tokens": 1e400})"},
      {"NaN", R"({"prompt": "x", "temperature": NaN})"},
      {"trailing garbage", R"({"prompt": "x"} {)"},
      {"top level not an object", R"(["prompt", "x"])"},
      {"form encoded", "prompt=hi&max_tokens=2", "application/x-www-form-urlencoded"},
      {"multipart", "--XX\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nhi\r\n--XX--\r\n",
       "multipart/form-data; boundary=XX"},
  };
  for (const std::string path : {"/v1/completions", "/v1/chat/completions"}) {
    for (const Case& c : cases) {
      SCOPED_TRACE(path + ": " + c.name);
      const RawResponse r = exchange(http_post(path, c.body, c.content_type));
      expect_api_error(r.status, r.body, 400);
    }
  }
  // The Content-Type is not checked: a JSON body is read as JSON whatever it says.
  const RawResponse plain = exchange(http_post("/v1/completions", R"({"prompt": "Hi", "max_tokens": 2})", "text/plain"));
  EXPECT_EQ(plain.status, 200) << plain.body;
  // A POST with neither Content-Length nor chunked encoding has no body (HTTP/1.1): a 400 at once,
  // and the connection goes on with the next request.
  RawConnection conn(server_->port());
  const auto sent = Clock::now();
  conn.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n");
  const RawResponse first = conn.read_response(5s);
  expect_api_error(first.status, first.body, 400);
  EXPECT_EQ(conn.read_response(5s).status, 200);
  EXPECT_LT(Clock::now() - sent, 1s);
}

// Every field both endpoints accept, with a value of every JSON type it does not: 400 naming it.
TEST_F(HostileClient, WrongTypesForEveryField) {
  enum Kind { String, Integer, Number, Boolean, Array, Object, Null };
  const std::vector<std::pair<Kind, json>> values = {
      {String, "x"}, {Integer, 7}, {Number, 1.5}, {Boolean, true}, {Array, json::array({1})}, {Object, {{"a", 1}}},
      {Null, nullptr}};
  struct Field {
    std::string name;               // as the error's param names it
    std::vector<Kind> accepted;     // types whose sample value above is no type error (null: optional)
    std::function<json(json)> body;  // the request with the field set to a value
  };
  const json completion = {{"prompt", "Hi"}, {"max_tokens", 2}};
  const json chat = {{"messages", {{{"role", "user"}, {"content", "Hi"}}}}, {"max_tokens", 2}};
  auto top = [](json base, const std::string& name) {
    return [base, name](json v) {
      json b = base;
      b[name] = std::move(v);
      return b;
    };
  };
  const std::vector<Kind> optional_int = {Integer, Null}, optional_number = {Integer, Number, Null},
                          optional_bool = {Boolean, Null}, optional_string = {String, Null}, optional_none = {Null};
  const std::vector<std::pair<std::string, std::vector<Kind>>> common = {
      {"model", optional_string},        {"max_tokens", optional_int},      {"temperature", optional_number},
      {"top_p", optional_number},        {"top_k", optional_int},           {"min_p", optional_number},
      {"seed", optional_int},            {"presence_penalty", optional_number}, {"frequency_penalty", optional_number},
      {"stop", optional_string},         {"ignore_eos", optional_bool},     {"n", optional_int},
      {"best_of", optional_int},         {"stream", optional_bool},         {"stream_options", optional_none},
      {"user", optional_string},         {"response_format", optional_none}, {"logit_bias", optional_none},
      {"tools", optional_none},          {"suffix", optional_none},
  };
  struct Endpoint {
    std::string path;
    std::vector<Field> fields;
  };
  std::vector<Endpoint> endpoints = {{"/v1/completions", {}}, {"/v1/chat/completions", {}}};
  for (const auto& [name, accepted] : common) {
    endpoints[0].fields.push_back({name, accepted, top(completion, name)});
    endpoints[1].fields.push_back({name, accepted, top(chat, name)});
  }
  json no_prompt = completion;
  no_prompt.erase("prompt");
  json no_messages = chat;
  no_messages.erase("messages");
  auto nested = [](json base, std::function<void(json&, json)> set) {
    return [base, set](json v) {
      json b = base;
      set(b, std::move(v));
      return b;
    };
  };
  endpoints[0].fields.insert(
      endpoints[0].fields.end(),
      {{"prompt", {String, Array}, top(no_prompt, "prompt")},
       {"logprobs", optional_int, top(completion, "logprobs")},
       {"echo", optional_bool, top(completion, "echo")},
       {"stream_options.include_usage", optional_bool,
        nested(completion, [](json& b, json v) {
          b["stream"] = true;
          b["stream_options"] = {{"include_usage", v}};
        })}});
  endpoints[1].fields.insert(
      endpoints[1].fields.end(),
      {{"messages", {}, top(no_messages, "messages")},
       {"max_completion_tokens", optional_int, top(chat, "max_completion_tokens")},
       {"logprobs", optional_bool, top(chat, "logprobs")},
       {"top_logprobs", optional_int, top(chat, "top_logprobs")},
       {"add_generation_prompt", optional_bool, top(chat, "add_generation_prompt")},
       {"echo", optional_none, top(chat, "echo")},
       {"messages[0]", {}, nested(chat, [](json& b, json v) { b["messages"] = json::array({v}); })},
       {"messages[0].role", {String}, nested(chat, [](json& b, json v) { b["messages"][0]["role"] = v; })},
       {"messages[0].content", {String}, nested(chat, [](json& b, json v) { b["messages"][0]["content"] = v; })},
       {"messages[0].content[0]", {},
        nested(chat, [](json& b, json v) { b["messages"][0]["content"] = json::array({v}); })},
       {"messages[0].content[0].type", {String},
        nested(chat, [](json& b, json v) { b["messages"][0]["content"] = {{{"type", v}, {"text", "Hi"}}}; })},
       {"messages[0].content[0].text", {String},
        nested(chat, [](json& b, json v) { b["messages"][0]["content"] = {{{"type", "text"}, {"text", v}}}; })},
       {"stream_options.include_usage", optional_bool,
        nested(chat, [](json& b, json v) {
          b["stream"] = true;
          b["stream_options"] = {{"include_usage", v}};
        })}});

  auto c = server_->client();
  int checked = 0;
  for (const Endpoint& e : endpoints) {
    for (const Field& f : e.fields) {
      for (const auto& [kind, value] : values) {
        if (std::find(f.accepted.begin(), f.accepted.end(), kind) != f.accepted.end()) continue;
        const json body = f.body(value);
        SCOPED_TRACE(e.path + " " + body.dump());
        const Reply r = post_json(*c, e.path, body);
        expect_api_error(r.status, r.body, 400, f.name);
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 150);
}

TEST_F(HostileClient, AbsurdValues) {
  const json completion = {{"prompt", "Hi"}, {"max_tokens", 2}};
  const json chat = {{"messages", {{{"role", "user"}, {"content", "Hi"}}}}, {"max_tokens", 2}};
  auto with = [](json base, const json& fields) {
    base.update(fields);
    return base;
  };
  std::vector<json> many_stops(10000, "stop");
  std::vector<int> million_ids(1000000, 7);
  std::string million_tokens;  // dummy:tiny's tokenizer: one token per letter here
  for (int i = 0; i < 1000000; ++i) million_tokens.push_back(static_cast<char>('a' + i % 26));
  json many_messages = json::array();
  for (int i = 0; i < 20000; ++i) many_messages.push_back({{"role", i % 2 ? "assistant" : "user"}, {"content", "Hi"}});
  struct Case {
    std::string path;
    json body;
    std::string param;
  };
  const std::vector<Case> cases = {
      {"/v1/completions", with(completion, {{"max_tokens", 1e9}}), "max_tokens"},  // beyond the context, as OpenAI
      {"/v1/completions", with(completion, {{"max_tokens", 0}}), "max_tokens"},
      {"/v1/chat/completions", with(chat, {{"max_completion_tokens", 1e9}}), "max_tokens"},
      {"/v1/completions", with(completion, {{"n", 1e6}}), "n"},
      {"/v1/chat/completions", with(chat, {{"n", 0}}), "n"},
      {"/v1/completions", with(completion, {{"top_p", -1}}), "top_p"},
      {"/v1/completions", with(completion, {{"top_p", 0}}), "top_p"},
      {"/v1/completions", with(completion, {{"temperature", 1e300}}), "temperature"},
      {"/v1/chat/completions", with(chat, {{"temperature", -1e300}}), "temperature"},
      {"/v1/completions", with(completion, {{"top_k", -5}}), "top_k"},
      {"/v1/completions", with(completion, {{"min_p", 2}}), "min_p"},
      {"/v1/completions", with(completion, {{"presence_penalty", 1e300}}), "presence_penalty"},
      {"/v1/chat/completions", with(chat, {{"frequency_penalty", -3}}), "frequency_penalty"},
      {"/v1/completions", with(completion, {{"seed", 1e30}}), "seed"},
      {"/v1/completions", with(completion, {{"stop", json::array({""})}}), "stop"},
      {"/v1/completions", with(completion, {{"stop", many_stops}}), "stop"},
      {"/v1/chat/completions", with(chat, {{"stop", many_stops}}), "stop"},
      {"/v1/completions", with(completion, {{"logprobs", 1e9}}), "logprobs"},
      {"/v1/completions", with(completion, {{"logprobs", -1}}), "logprobs"},
      {"/v1/chat/completions", with(chat, {{"logprobs", true}, {"top_logprobs", 1e9}}), "top_logprobs"},
      {"/v1/completions", with(completion, {{"prompt", million_tokens}}), "prompt"},
      {"/v1/completions", with(completion, {{"prompt", million_ids}}), "prompt"},
      {"/v1/completions", with(completion, {{"prompt", json::array({1, -1})}}), "prompt"},
      {"/v1/completions", with(completion, {{"prompt", json::array({1, 512})}}), "prompt"},  // vocab is 512
      {"/v1/completions", with(completion, {{"prompt", json::array({1, 2147483647})}}), "prompt"},
      {"/v1/completions", with(completion, {{"prompt", json::array({1, 1099511627776})}}), "prompt"},
      {"/v1/completions", with(completion, {{"prompt", json::array({1, 1e300})}}), "prompt"},
      {"/v1/completions", with(completion, {{"prompt", json::array()}}), "prompt"},
      {"/v1/chat/completions", with(chat, {{"messages", many_messages}}), "messages"},
  };
  auto c = server_->client();
  for (const Case& k : cases) {
    const std::string body = k.body.dump();
    SCOPED_TRACE(k.path + " " + body.substr(0, 160));
    const auto start = Clock::now();
    const Reply r = post_json(*c, k.path, body);
    expect_api_error(r.status, r.body, 400, k.param);
    EXPECT_LT(Clock::now() - start, 5s);  // refused without doing the work
  }
  // Where OpenAI accepts them: an empty stop list, a stop string longer than any output.
  EXPECT_EQ(post("/v1/completions", with(completion, {{"stop", json::array()}})).status, 200);
  EXPECT_EQ(post("/v1/completions", with(completion, {{"stop", std::string(100000, 'x')}})).status, 200);
}

// Connections that send their request one byte every 200 ms and never finish: each is answered
// 408 and closed once the read timeout has passed, and meanwhile everyone else is served at once.
TEST_F(HostileClient, SlowLorisIsCutOffWithoutStarvingOthers) {
  constexpr int kSlow = 9;
  std::vector<std::thread> lorises;
  std::vector<int> statuses(kSlow, 0);
  std::vector<double> lasted(kSlow, 0.0);
  for (int i = 0; i < kSlow; ++i) {
    lorises.emplace_back([&, i] {
      // A third trickle their request line (no answer: there is no request yet), a third their
      // headers, a third a body they announced.
      const int kind = i % 3;
      const std::string head = "GET /health HTTP/1.1\r\nHost: x\r\n";
      const std::string request =
          kind == 0   ? "GET /health?" + std::string(1000, 's')
          : kind == 1 ? head + "X-Slow: " + std::string(1000, 's')
                      : "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" +
                          std::string(1000, ' ');
      RawConnection conn(server_->port());
      const auto start = Clock::now();
      size_t at = 0;
      if (kind == 1) at = head.size();  // the complete lines go at once
      if (kind == 2) at = request.find("\r\n\r\n") + 4;
      conn.send(request.substr(0, at));
      bool closed = false;
      while (!closed && Clock::now() - start < kReadTimeout + 6s) {
        if (at < request.size()) conn.send(request.substr(at++, 1));
        closed = conn.wait_closed(200ms);
      }
      lasted[static_cast<size_t>(i)] = std::chrono::duration<double>(Clock::now() - start).count();
      const std::string& got = conn.pending();
      if (got.rfind("HTTP/1.1 ", 0) == 0) statuses[static_cast<size_t>(i)] = std::atoi(got.c_str() + 9);
      if (!closed) ADD_FAILURE() << "slow connection " << i << " still open";
    });
  }
  // Meanwhile, normal clients are served promptly.
  std::this_thread::sleep_for(300ms);
  auto c = server_->client();
  for (int i = 0; i < 5; ++i) {
    const auto start = Clock::now();
    EXPECT_EQ(c->Get("/health")->status, 200);
    EXPECT_EQ(post_json(*c, "/v1/completions", json{{"prompt", "Hi"}, {"max_tokens", 2}}).status, 200);
    EXPECT_LT(Clock::now() - start, 1s);
    std::this_thread::sleep_for(100ms);
  }
  for (auto& t : lorises) t.join();
  for (int i = 0; i < kSlow; ++i) {
    if (i % 3 != 0) {
      EXPECT_EQ(statuses[static_cast<size_t>(i)], 408) << "slow connection " << i;
    }
    EXPECT_GE(lasted[static_cast<size_t>(i)], 1.5) << "slow connection " << i;
    EXPECT_LT(lasted[static_cast<size_t>(i)], 5.0) << "slow connection " << i;
  }
}

// Opens a stream and hangs up after `chunks` SSE events; true when that many arrived.
bool stream_and_vanish(int port, int chunks, int salt) {
  RawConnection conn(port);
  const json body = {{"prompt", "Hello " + std::to_string(salt)}, {"max_tokens", 4000}, {"ignore_eos", true},
                     {"logprobs", 0}, {"stream", true}};
  conn.send(http_post("/v1/completions", body.dump()));
  auto events = [](const std::string& text) {
    int n = 0;
    for (size_t at = text.find("data: "); at != std::string::npos; at = text.find("data: ", at + 1)) ++n;
    return n;
  };
  return conn.read_until([&](const std::string& text) { return events(text) >= chunks; }, 30s);
}

// Streams dropped mid-response, many at once: the engine cancels every one of them, frees their
// KV blocks, and the server ends where it started, in memory too.
TEST_F(HostileClient, VanishingStreamsLeaveNothingBehind) {
  auto storm = [](int total, int threads) {
    std::atomic<int> next{0};
    std::atomic<int> failed{0};
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        std::mt19937 rng(static_cast<unsigned>(t));
        for (int i = next++; i < total; i = next++) {
          if (!stream_and_vanish(server_->port(), 1 + static_cast<int>(rng() % 8), i)) ++failed;
        }
      });
    }
    for (auto& w : workers) w.join();
    return failed.load();
  };
  // Bodies a leak would make visible: 20 rounds of 5.4 MiB read, parsed and refused.
  auto body_abuse = [] {
    const std::string ids = json{{"prompt", std::vector<int>(200000, 7)}}.dump();
    for (int i = 0; i < 20; ++i) {
      EXPECT_EQ(exchange(http_post("/v1/completions", std::string(kMaxBody + 1, ' '))).status, 413);
      EXPECT_EQ(exchange(http_post("/v1/completions", ids)).status, 400);
    }
  };
  // Warm up with the same mix, so that every thread, arena and cache the run needs exists.
  ASSERT_EQ(storm(100, 32), 0);
  body_abuse();
  std::string text;
  ASSERT_TRUE(wait_for_metrics(*server_, engine_idle, 10s, &text)) << text;
  [[maybe_unused]] const size_t rss_warm = server_->rss_bytes();  // not checked under ASan (below)
  const double aborted_before = aborted(text);

  // Hang up after the first chunk, then 500 streams dropped after a few chunks each.
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(stream_and_vanish(server_->port(), 1, 1000 + i));
  ASSERT_EQ(storm(500, 50), 0);
  body_abuse();

  EXPECT_TRUE(wait_for_metrics(
      *server_, [&](const std::string& m) { return engine_idle(m) && aborted(m) == aborted_before + 520; }, 15s,
      &text))
      << "aborted " << aborted(text) - aborted_before << " of 520\n" << text;
  // What may remain is fragmentation and the allocator's caches of small blocks: about 1.5 MiB
  // measured (5 MiB without the fixed mmap threshold). 32 MiB stays clear of that noise, yet a
  // leak of 64 KiB per dropped stream (a request's state, its session, a connection buffer) or of
  // the refused bodies (20 rounds of 5.4 MiB) would exceed it.
  // Under AddressSanitizer RSS includes its quarantine, so there LeakSanitizer checks for leaks
  // instead (when the server exits); everything above still ran.
#if !MORPHSERVE_UNDER_ASAN
  const size_t rss_after = server_->rss_bytes();
  RecordProperty("rss_after_warm_up_kib", std::to_string(rss_warm >> 10));
  RecordProperty("rss_after_run_kib", std::to_string(rss_after >> 10));
  ASSERT_GT(rss_warm, 0u);
  EXPECT_LT(rss_after, rss_warm + (32u << 20)) << "RSS after warm-up " << (rss_warm >> 20) << " MiB, after the run "
                                               << (rss_after >> 20) << " MiB";
#endif
}

}  // namespace
}  // namespace morphserve::testing
