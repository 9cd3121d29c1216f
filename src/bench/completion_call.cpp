#include "bench/completion_call.h"

#include <cmath>
#include <optional>

#include <fmt/format.h>

#include "bench/sse_parser.h"

namespace morphserve::bench {

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMaxErrorBody = 64 * 1024;           // enough for any error message
constexpr size_t kMaxWholeBody = 64 * 1024 * 1024;    // a whole (non-streamed) answer

// What the chunks of one stream said, beyond the token times.
struct StreamState {
  bool done = false;
  std::string error;  // an error event inside a 200 stream
  std::optional<int64_t> completion_tokens;
  std::optional<int64_t> prompt_tokens;
  int64_t chunks_with_tokens = 0;
};

void read_usage(const nlohmann::json& doc, StreamState& state) {
  const auto usage = doc.find("usage");
  if (usage == doc.end() || !usage->is_object()) return;
  if (const auto c = usage->find("completion_tokens"); c != usage->end() && c->is_number_integer()) {
    state.completion_tokens = c->get<int64_t>();
  }
  if (const auto p = usage->find("prompt_tokens"); p != usage->end() && p->is_number_integer()) {
    state.prompt_tokens = p->get<int64_t>();
  }
}

std::string error_text(const nlohmann::json& error) {
  if (error.is_string()) return error.get<std::string>();
  if (error.is_object() && error.contains("message") && error["message"].is_string()) {
    return error["message"].get<std::string>();
  }
  return error.dump();
}

// The text a choice carries: "text" on the completions API, delta.content (streamed) or
// message.content (whole) on chat; null when it has none.
const nlohmann::json* choice_text(const nlohmann::json& choice, bool chat) {
  if (!chat) return choice.contains("text") ? &choice["text"] : nullptr;
  for (const char* holder : {"delta", "message"}) {
    const auto h = choice.find(holder);
    if (h != choice.end() && h->is_object() && h->contains("content")) return &(*h)["content"];
  }
  return nullptr;
}

// The text of every choice in a chunk or response, appended to `out`.
void append_text(const nlohmann::json& doc, bool chat, std::string& out) {
  const auto choices = doc.find("choices");
  if (choices == doc.end() || !choices->is_array()) return;
  for (const nlohmann::json& choice : *choices) {
    if (!choice.is_object()) continue;
    const nlohmann::json* text = choice_text(choice, chat);
    if (text && text->is_string()) out += text->get_ref<const std::string&>();
  }
}

enum class ChunkKind { Other, Token, FinishWithoutText };

// Whether this chunk carries a token (see the header).
ChunkKind chunk_kind(const nlohmann::json& doc, bool chat) {
  const auto choices = doc.find("choices");
  if (choices == doc.end() || !choices->is_array()) return ChunkKind::Other;
  ChunkKind kind = ChunkKind::Other;
  for (const nlohmann::json& choice : *choices) {
    if (!choice.is_object()) continue;
    const bool finishes = choice.contains("finish_reason") && !choice["finish_reason"].is_null();
    const nlohmann::json* text = choice_text(choice, chat);
    const bool has_text = text && text->is_string() && !text->get_ref<const std::string&>().empty();
    // Logprobs name the chunk's tokens even when their text is still empty.
    const bool has_logprobs = choice.contains("logprobs") && !choice["logprobs"].is_null();
    if (has_logprobs) return ChunkKind::Token;
    // On the completions API a chunk without text that does not finish is a token whose text is
    // incomplete (vLLM); chat's opening chunk carries only the role, so it is not.
    if (has_text || (!chat && text && text->is_string() && !finishes)) return ChunkKind::Token;
    if (finishes) kind = ChunkKind::FinishWithoutText;
  }
  return kind;
}

double since(Clock::time_point origin) { return std::chrono::duration<double>(Clock::now() - origin).count(); }

}  // namespace

void run_completion(const ServerUrl& url, const std::string& api_key, const CompletionCall& call,
                    Clock::time_point origin, RequestRecord& record) {
  // Rounded up: a read that times out has then reached the call's timeout, so it is reported as
  // "timed out" below, not as a connection that broke (a 25.3 ms timeout truncated to 25 ms did).
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(std::ceil(call.timeout_seconds * 1000)));
  auto client = make_client(url, timeout, api_key);

  StreamState state;
  std::string body;  // of an error, or of a whole JSON answer
  std::string content_type;
  bool timed_out = false;
  SseParser parser([&](std::string_view data) {
    if (data == "[DONE]") {
      state.done = true;
      return;
    }
    const nlohmann::json doc = nlohmann::json::parse(data, nullptr, false);
    if (!doc.is_object()) return;  // not JSON: nothing to learn from it
    if (const auto e = doc.find("error"); e != doc.end() && !e->is_null() && state.error.empty()) {
      state.error = error_text(*e);
    }
    read_usage(doc, state);
    append_text(doc, call.chat, record.output_text);
    const ChunkKind kind = chunk_kind(doc, call.chat);
    // A server that holds back text it cannot decode yet (incomplete UTF-8) may send nothing until
    // the finishing chunk: that chunk is then the first sign of output, and counts as the first token.
    if (kind == ChunkKind::Token || (kind == ChunkKind::FinishWithoutText && record.token_seconds.empty())) {
      const double now = since(origin);
      if (!record.first_token_seconds) record.first_token_seconds = now;
      record.token_seconds.push_back(now);
      ++state.chunks_with_tokens;
    }
  });

  httplib::Request req;
  req.method = "POST";
  req.path = url.base_path + call.path;
  req.body = call.body;
  req.set_header("Content-Type", "application/json");
  req.set_header("Accept", "text/event-stream, application/json");
  req.set_header("Accept-Encoding", "identity");  // a compressed stream would arrive in lumps
  req.response_handler = [&](const httplib::Response& response) {
    record.http_status = response.status;
    content_type = response.get_header_value("Content-Type");
    return true;
  };
  const Clock::time_point send = Clock::now();
  const Clock::time_point deadline = send + timeout;
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (record.http_status != 200 || content_type.find("text/event-stream") == std::string::npos) {
      if (body.size() < (record.http_status == 200 ? kMaxWholeBody : kMaxErrorBody)) body.append(data, n);
    } else {
      parser.feed(std::string_view(data, n));
    }
    if (Clock::now() > deadline) {
      timed_out = true;
      return false;  // hang up: the server then cancels the request
    }
    return true;
  };
  record.send_seconds = std::chrono::duration<double>(send - origin).count();
  const httplib::Result result = client->send(req);
  record.end_seconds = since(origin);
  if (record.http_status == 200 && content_type.find("text/event-stream") != std::string::npos) parser.finish();

  const auto received = [&] { return fmt::format("{} tokens received", state.chunks_with_tokens); };
  const double elapsed = record.end_seconds - record.send_seconds;
  if (!result && record.http_status == 0) {
    // No answer at all: refused, unreachable, or no header before the read timeout.
    record.error = elapsed >= call.timeout_seconds * 0.99
                       ? fmt::format("timed out after {:.1f}s with no response", elapsed)
                       : fmt::format("connection failed: {}", describe_error(result.error()));
  } else if (record.http_status != 200) {
    record.error = fmt::format("HTTP {}: {}", record.http_status, error_message_of(body));
  } else if (timed_out || (!result && elapsed >= call.timeout_seconds * 0.99)) {
    record.error = fmt::format("timed out after {:.1f}s ({})", elapsed, received());
  } else if (!state.error.empty()) {
    record.error = "stream error: " + state.error;
  } else if (content_type.find("text/event-stream") == std::string::npos) {
    // A whole JSON answer.
    const nlohmann::json doc = nlohmann::json::parse(body, nullptr, false);
    if (!doc.is_object()) {
      record.error = fmt::format("HTTP 200 without a JSON body or a stream ({})", error_message_of(body));
    } else if (doc.contains("error") && !doc["error"].is_null()) {
      record.error = "error: " + error_text(doc["error"]);
    } else {
      read_usage(doc, state);
      append_text(doc, call.chat, record.output_text);
      if (!result) record.error = fmt::format("response broken: {}", describe_error(result.error()));
    }
  } else if (!result) {
    record.error = fmt::format("stream broken: {} ({})", describe_error(result.error()), received());
  } else if (!state.done) {
    record.error = fmt::format("stream ended without [DONE] ({})", received());
  }

  record.output_tokens = state.completion_tokens.value_or(state.chunks_with_tokens);
  if (!call.exact_prompt_tokens && state.prompt_tokens) record.prompt_tokens = *state.prompt_tokens;
}

}  // namespace morphserve::bench
