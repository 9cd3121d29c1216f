#include "server/completion_session.h"

#include <algorithm>

#include <fmt/format.h>

#include "server/json_fields.h"
#include "server/sse.h"

namespace morphserve::server {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

namespace {
constexpr auto kPollInterval = std::chrono::milliseconds(200);
constexpr auto kKeepAliveInterval = std::chrono::seconds(1);
constexpr auto kHeartbeatInterval = std::chrono::milliseconds(500);
// After the server aborts in-flight work, how long to wait for the engine to confirm.
constexpr auto kAbortWait = std::chrono::seconds(2);
}  // namespace

CompletionSession::CompletionSession(ServerState& state, const Tokenizer& tokenizer, PreparedCompletion prepared,
                                     std::unique_ptr<GenerationJob> job)
    : state_(state), in_flight_(state), prepared_(std::move(prepared)), job_(std::move(job)) {
  choices_.resize(static_cast<size_t>(job_->size()));
  for (Choice& c : choices_) {
    c.text = prepared_.echo_text;
    if (prepared_.logprobs) c.logprobs.emplace(prepared_.header.kind, tokenizer, prepared_.echo_text.size());
  }
}

json CompletionSession::apply(ChoiceUpdate& update) {
  Choice& c = choices_[static_cast<size_t>(update.index)];
  c.updated = true;
  RequestOutput& out = update.output;
  c.text += out.text;
  c.completion_tokens = std::max(c.completion_tokens, out.completion_tokens);
  json logprobs = nullptr;
  if (c.logprobs && !out.tokens.empty()) logprobs = c.logprobs->add(out.tokens);
  std::optional<FinishReason> finish;
  if (out.finish) {
    c.finish = out.finish;
    c.error = out.error;
    if (*out.finish == FinishReason::Stop || *out.finish == FinishReason::Length) finish = out.finish;
    // The whole request fails with it: the other choices need not run on.
    if (*out.finish == FinishReason::QueueTimeout) job_->cancel();
  }
  // A chunk for every generated token, even one whose text is held back (part of a character or
  // of a possible stop string) or empty (a control or unused token), as vLLM and llama-server
  // do: a client measures its time to first token and between tokens by the chunks.
  if (out.text.empty() && !finish && logprobs.is_null() && out.tokens.empty()) return nullptr;
  return chunk_choice(prepared_.header.kind, update.index, out.text, finish, logprobs);
}

std::optional<ApiError> CompletionSession::failure() const {
  // First: a queue timeout is why the session cancelled the other choices.
  for (const Choice& c : choices_) {
    if (c.finish == FinishReason::QueueTimeout) {
      return ApiError(503, "service_unavailable_error", fmt::format("the server is overloaded: {}; retry later", c.error),
                      std::nullopt, "queue_timeout");
    }
  }
  for (const Choice& c : choices_) {
    if (!c.finish || *c.finish == FinishReason::Cancelled) {
      return ApiError(503, "service_unavailable_error", "the request was cancelled: the server is shutting down",
                      std::nullopt, "shutting_down");
    }
    if (*c.finish == FinishReason::Error) {
      return ApiError(500, "server_error", "generation failed: " + (c.error.empty() ? std::string("internal error") : c.error));
    }
  }
  return std::nullopt;
}

json CompletionSession::usage() const {
  int64_t completion = 0;
  for (const Choice& c : choices_) completion += c.completion_tokens;
  return usage_json(prepared_.prompt_tokens, completion);
}

std::optional<ChoiceUpdate> CompletionSession::next_update(std::chrono::milliseconds wait) {
  std::optional<ChoiceUpdate> update = job_->next(wait);
  if (!update && state_.aborting() && !abort_deadline_) {
    job_->cancel();
    abort_deadline_ = Clock::now() + kAbortWait;
  }
  return update;
}

bool CompletionSession::gave_up() const { return abort_deadline_ && Clock::now() > *abort_deadline_; }

bool CompletionSession::stream(httplib::DataSink& sink) {
  const ResponseHeader& header = prepared_.header;
  Clock::time_point last_write = Clock::now();
  auto write = [&](const std::string& text) {
    last_write = Clock::now();
    if (sink.write(text.data(), text.size())) return true;
    job_->cancel();  // the client went away: free the engine's work now
    return false;
  };
  // Chat streams open with the assistant role; echoed prompts come before the completion.
  if (header.kind == ApiKind::Chat || !prepared_.echo_text.empty()) {
    json opening = json::array();
    for (size_t i = 0; i < choices_.size(); ++i) {
      opening.push_back(chunk_choice(header.kind, static_cast<int>(i), prepared_.echo_text, std::nullopt, nullptr,
                                     header.kind == ApiKind::Chat));
    }
    if (!write(sse_event(stream_chunk(header, std::move(opening), prepared_.include_usage)))) return false;
  }
  while (!job_->finished() && !gave_up()) {
    std::optional<ChoiceUpdate> update = next_update(kPollInterval);
    json choice = update ? apply(*update) : json(nullptr);
    if (!choice.is_null()) {
      if (!write(sse_event(stream_chunk(header, json::array({std::move(choice)}), prepared_.include_usage)))) return false;
    } else if (Clock::now() - last_write >= kKeepAliveInterval) {
      // Nothing to send for a while (queued, or tokens without text yet): only a write can tell
      // whether the client is still there.
      if (!write(sse_comment("keep-alive"))) return false;
    }
  }
  if (std::optional<ApiError> error = failure()) {
    if (!write(sse_event(error->to_json()))) return false;
  } else if (prepared_.include_usage) {
    if (!write(sse_event(usage_chunk(header, usage())))) return false;
  }
  if (!write(sse_done())) return false;
  sink.done();
  return true;
}

bool CompletionSession::collect_until(Clock::time_point deadline) {
  while (!job_->finished() && !gave_up()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    if (std::optional<ChoiceUpdate> update = next_update(std::min(left, std::chrono::milliseconds(kPollInterval)))) {
      apply(*update);
    }
  }
  return true;
}

bool CompletionSession::write_whole_with_heartbeat(httplib::DataSink& sink) {
  while (!collect_until(Clock::now() + kHeartbeatInterval)) {
    if (!sink.write(" ", 1)) {
      job_->cancel();
      return false;
    }
  }
  const std::string body = dump_json(whole_result().second);
  if (!sink.write(body.data(), body.size())) return false;
  sink.done();
  return true;
}

bool CompletionSession::all_left_queue() const {
  return std::all_of(choices_.begin(), choices_.end(), [](const Choice& c) { return c.updated; });
}

std::pair<int, json> CompletionSession::whole_result() const {
  if (std::optional<ApiError> error = failure()) return {error->status(), error->to_json()};
  json choices = json::array();
  for (size_t i = 0; i < choices_.size(); ++i) {
    const Choice& c = choices_[i];
    choices.push_back(response_choice(prepared_.header.kind, static_cast<int>(i), c.text, c.finish,
                                      c.logprobs ? c.logprobs->all() : json(nullptr)));
  }
  return {200, whole_response(prepared_.header, std::move(choices), usage())};
}

}  // namespace morphserve::server
