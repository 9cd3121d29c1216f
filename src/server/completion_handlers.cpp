#include "server/completion_handlers.h"

#include <algorithm>
#include <cstdint>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "engine/engine.h"
#include "model/llama_weights.h"
#include "server/completion_session.h"
#include "server/http_reply.h"
#include "server/json_fields.h"
#include "server/openai_request.h"

namespace morphserve::server {

namespace {

using Clock = std::chrono::steady_clock;
// A whole (non-streamed) response that takes longer than this switches to a chunked body with
// whitespace heartbeats, so a client that leaves is noticed and its request cancelled.
constexpr auto kWholeResponseWait = std::chrono::seconds(2);
constexpr auto kQueuedPoll = std::chrono::milliseconds(200);

struct Prepared {
  RequestParams params;
  PreparedCompletion completion;
  bool stream = false;
  const char* prompt_field = "prompt";  // the request field the prompt came from, for errors
  bool echo_token_ids = false;          // echo a prompt given as token ids
};

void check_model_name(const ServerState& state, const std::optional<std::string>& model) {
  if (model && !state.serves_model(*model)) {
    throw_invalid(fmt::format("The model `{}` does not exist; this server serves `{}`", *model, state.served_model_name()),
                  "model", "model_not_found");
  }
}

// The engine's admission is the one check of a request's length and token ids; this says what it
// refused in vLLM's words, naming the field (the prompt's is "prompt" or "messages").
[[noreturn]] void throw_rejected(const RequestRejected& e, const char* prompt_field) {
  switch (e.reason) {
    case RequestRejected::Reason::TokenOutsideVocabulary:
      throw_invalid(fmt::format("'{}' holds token id {}, outside the vocabulary of {}", prompt_field, e.token, e.limit),
                    prompt_field);
    case RequestRejected::Reason::PromptTooLong:
      throw_invalid(fmt::format("This model's maximum context length is {} tokens, but the prompt has {} tokens; "
                                "shorten the prompt",
                                e.limit, e.prompt_tokens),
                    prompt_field, "context_length_exceeded");
    case RequestRejected::Reason::CompletionTooLong:
      break;
  }
  throw_invalid(fmt::format("This model's maximum context length is {} tokens. However, you requested {} tokens "
                            "({} in the prompt, {} in the completion). Please reduce the length of the prompt or "
                            "completion.",
                            e.limit, e.prompt_tokens + std::min(e.max_tokens, INT64_MAX - e.prompt_tokens), e.prompt_tokens,
                            e.max_tokens),
                "max_tokens", "context_length_exceeded");
}

void fill_common(const ServerState& state, ApiKind kind, const GenerationRequest& r, Prepared& p) {
  p.params = r.params;
  p.stream = r.stream;
  p.completion.header = {kind, make_response_id(kind), unix_time_now(), state.served_model_name()};
  p.completion.n = r.n;
  p.completion.include_usage = r.include_usage;
  p.completion.logprobs = r.params.logprobs >= 0;
}

Prepared prepare_completion(const ServerState& state, const ServingModel& m, const nlohmann::json& body) {
  CompletionRequest r = parse_completion_request(body);
  check_model_name(state, r.model);
  Prepared p;
  fill_common(state, ApiKind::Completion, r, p);
  const Tokenizer& tokenizer = m.model->tokenizer;
  if (const auto* text = std::get_if<std::string>(&r.prompt)) {
    if (text->empty()) throw_invalid("'prompt' must not be empty", "prompt");
    p.params.prompt = tokenizer.encode(*text, true, true);
    if (r.echo) p.completion.echo_text = *text;
  } else {
    p.params.prompt = std::get<std::vector<int32_t>>(std::move(r.prompt));
    p.echo_token_ids = r.echo;  // decoded once the engine has admitted the ids
  }
  if (p.params.prompt.empty()) throw_invalid("'prompt' encodes to no tokens", "prompt");
  p.params.max_tokens = r.max_tokens.value_or(16);  // OpenAI's default for completions
  return p;
}

Prepared prepare_chat(const ServerState& state, const ServingModel& m, const nlohmann::json& body) {
  ChatRequest r = parse_chat_request(body);
  check_model_name(state, r.model);
  Prepared p;
  fill_common(state, ApiKind::Chat, r, p);
  const Tokenizer& tokenizer = m.model->tokenizer;
  const std::string text = render_chat(m.chat_template, r.messages, r.add_generation_prompt);
  // Templates that spell BOS out get it from the text; the others get the tokenizer's (llama.cpp's rule).
  const std::string& bos = m.chat_template.bos_token;
  const bool add_bos = bos.empty() || text.compare(0, bos.size(), bos) != 0;
  p.params.prompt = tokenizer.encode(text, add_bos, true);
  if (p.params.prompt.empty()) throw_invalid("'messages' encode to no tokens", "messages");
  const auto prompt_tokens = static_cast<int64_t>(p.params.prompt.size());
  // Without a limit, chat may use the rest of the context, as vLLM allows.
  p.params.max_tokens = r.max_tokens.value_or(std::max<int64_t>(1, m.max_model_len - prompt_tokens));
  p.prompt_field = "messages";
  return p;
}

std::unique_ptr<GenerationJob> submit(Engine& engine, const Prepared& p) {
  try {
    return std::make_unique<GenerationJob>(engine, p.params, p.completion.n);
  } catch (const QueueFull& e) {
    throw ApiError(429, "rate_limit_error", fmt::format("the server is busy: {}; retry shortly", e.what()), std::nullopt,
                   "queue_full");
  } catch (const ShuttingDown&) {
    throw ApiError(503, "service_unavailable_error", "the server is shutting down", std::nullopt, "shutting_down");
  } catch (const RequestRejected& e) {
    throw_rejected(e, p.prompt_field);
  } catch (const InvalidArgument& e) {
    throw_invalid(e.what());
  }
}

void respond(ServerState& state, const ServingModel& m, Prepared p, httplib::Response& res) {
  std::unique_ptr<GenerationJob> job = submit(*m.engine, p);
  if (p.echo_token_ids) p.completion.echo_text = m.model->tokenizer.decode(p.params.prompt);
  p.completion.prompt_tokens = static_cast<int64_t>(p.params.prompt.size());
  auto session = std::make_shared<CompletionSession>(state, m.model->tokenizer, std::move(p.completion), std::move(job));
  if (p.stream) {
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider("text/event-stream",
                                     [session](size_t, httplib::DataSink& sink) { return session->stream(sink); });
    return;
  }
  // With a queue timeout, the status also waits until every choice has left the queue, so that a
  // timeout is still a real 503 (the wait is bounded by the timeout plus one prefill).
  const bool may_time_out = m.engine->queue_timeout().count() > 0;
  Clock::time_point deadline = Clock::now() + kWholeResponseWait;
  while (!session->collect_until(deadline)) {
    if (!may_time_out || session->all_left_queue()) {
      res.set_chunked_content_provider("application/json", [session](size_t, httplib::DataSink& sink) {
        return session->write_whole_with_heartbeat(sink);
      });
      return;
    }
    deadline = Clock::now() + kQueuedPoll;
  }
  auto [status, body] = session->whole_result();
  send_json(res, status, body);
}

}  // namespace

void handle_generation(ServerState& state, ApiKind kind, const httplib::Request& req, httplib::Response& res) {
  try {
    const ServingModel& m = state.require_ready();
    const nlohmann::json body = parse_json_body(req.body);
    Prepared p = kind == ApiKind::Chat ? prepare_chat(state, m, body) : prepare_completion(state, m, body);
    respond(state, m, std::move(p), res);
  } catch (const ApiError& e) {
    send_error(res, e);
  } catch (const InvalidArgument& e) {  // e.g. the tokenizer refusing an id
    send_error(res, ApiError(400, "invalid_request_error", e.what()));
  } catch (const std::exception& e) {
    spdlog::error("{} {}: {}", req.method, req.path, e.what());
    send_error(res, ApiError(500, "server_error", fmt::format("internal error: {}", e.what())));
  }
}

}  // namespace morphserve::server
