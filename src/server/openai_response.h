#pragma once
// The JSON OpenAI clients expect back: whole responses, streamed chunks, usage and logprobs, for
// both the completions ("text_completion") and the chat ("chat.completion") shapes.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/request.h"

namespace morphserve {
class Tokenizer;
}

namespace morphserve::server {

enum class ApiKind { Completion, Chat };

// "cmpl-<hex>" or "chatcmpl-<hex>", unique per response.
std::string make_response_id(ApiKind kind);
int64_t unix_time_now();

nlohmann::json usage_json(int64_t prompt_tokens, int64_t completion_tokens);
// "stop" / "length"; null while unfinished (cancellation and errors never reach a choice).
nlohmann::json finish_reason_json(std::optional<FinishReason> reason);

// Logprobs of one choice, grown update by update. Completions shape: {tokens, token_logprobs,
// top_logprobs, text_offset}; chat shape: {content: [{token, logprob, bytes, top_logprobs}]}.
class ChoiceLogprobs {
 public:
  ChoiceLogprobs(ApiKind kind, const Tokenizer& tokenizer, size_t text_offset = 0);
  // Adds tokens and returns their logprobs alone (for a streamed chunk).
  nlohmann::json add(const std::vector<GeneratedToken>& tokens);
  const nlohmann::json& all() const { return all_; }

 private:
  nlohmann::json shape(const std::vector<GeneratedToken>& tokens);

  ApiKind kind_;
  const Tokenizer& tokenizer_;
  size_t text_offset_;
  nlohmann::json all_;
};

// One finished choice of a whole response.
nlohmann::json response_choice(ApiKind kind, int index, const std::string& text, std::optional<FinishReason> finish,
                               const nlohmann::json& logprobs);
// One choice of a streamed chunk: `text` is the new text (chat: the delta's content; with
// chat_role the delta also carries the role, as the first chunk does).
nlohmann::json chunk_choice(ApiKind kind, int index, const std::string& text, std::optional<FinishReason> finish,
                            const nlohmann::json& logprobs, bool chat_role = false);

struct ResponseHeader {
  ApiKind kind = ApiKind::Completion;
  std::string id;
  int64_t created = 0;
  std::string model;
};

nlohmann::json whole_response(const ResponseHeader& header, nlohmann::json choices, const nlohmann::json& usage);
// with_usage: the chunk carries "usage": null (stream_options.include_usage asks for that).
nlohmann::json stream_chunk(const ResponseHeader& header, nlohmann::json choices, bool with_usage);
// The last chunk with include_usage: no choices, only usage.
nlohmann::json usage_chunk(const ResponseHeader& header, const nlohmann::json& usage);

}  // namespace morphserve::server
