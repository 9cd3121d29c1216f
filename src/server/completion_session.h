#pragma once
// One submitted completion or chat request from its first update to its last byte on the wire:
// gathers each choice's text, finish reason, token counts and logprobs, and writes the result as
// SSE chunks or as one JSON body. Whenever a write fails (the client went away) it cancels the
// engine requests at once, so their KV blocks are freed at the next iteration.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "server/api_error.h"
#include "server/generation_job.h"
#include "server/openai_response.h"
#include "server/server_state.h"

namespace morphserve {
class Tokenizer;
}

namespace morphserve::server {

struct PreparedCompletion {
  ResponseHeader header;
  int n = 1;
  bool include_usage = false;
  bool logprobs = false;
  std::string echo_text;  // completions with echo: the prompt, written before the completion
  int64_t prompt_tokens = 0;
};

class CompletionSession {
 public:
  CompletionSession(ServerState& state, const Tokenizer& tokenizer, PreparedCompletion prepared,
                    std::unique_ptr<GenerationJob> job);

  // Streaming: writes every event, then [DONE]. Returns false when the client went away.
  bool stream(httplib::DataSink& sink);
  // Whole response: gathers updates until every choice has finished or the deadline passes.
  bool collect_until(std::chrono::steady_clock::time_point deadline);
  // Whole response taking long: a space every half second (JSON allows leading whitespace) so a
  // client that left is noticed, then the body. Returns false when the client went away.
  bool write_whole_with_heartbeat(httplib::DataSink& sink);
  // Status and body of the whole response, once collect_until() returned true.
  std::pair<int, nlohmann::json> whole_result() const;
  // True once every choice has had an update (its first token, or its end): none of them can
  // still time out in the engine's queue.
  bool all_left_queue() const;

 private:
  struct Choice {
    std::string text;
    std::optional<FinishReason> finish;
    std::string error;
    int64_t completion_tokens = 0;
    std::optional<ChoiceLogprobs> logprobs;
    bool updated = false;
  };
  // Folds an update into its choice; returns the streamed chunk's choice, or null when there is
  // nothing to send.
  nlohmann::json apply(ChoiceUpdate& update);
  // Null when every choice finished normally, else the error to report.
  std::optional<ApiError> failure() const;
  // Waits for the next update, cancelling the job once the server aborts in-flight work.
  std::optional<ChoiceUpdate> next_update(std::chrono::milliseconds wait);
  bool gave_up() const;
  nlohmann::json usage() const;

  ServerState& state_;
  ServerState::InFlight in_flight_;
  PreparedCompletion prepared_;
  std::unique_ptr<GenerationJob> job_;
  std::vector<Choice> choices_;
  std::optional<std::chrono::steady_clock::time_point> abort_deadline_;
};

}  // namespace morphserve::server
