#pragma once
// OpenAI request bodies (/v1/completions, /v1/chat/completions) parsed into checked values.
// Every field is type- and range-checked here, each error a 400 naming the field; what needs the
// model (tokenizing, the context length) is checked when the request is prepared.
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/request.h"
#include "server/chat_template.h"

namespace morphserve::server {

inline constexpr int kMaxChoices = 16;      // n
inline constexpr size_t kMaxStopStrings = 16;
inline constexpr int kMaxLogprobs = 20;

// What both endpoints share.
struct GenerationRequest {
  std::optional<std::string> model;
  std::optional<int64_t> max_tokens;  // none: the endpoint's default
  RequestParams params;               // everything but prompt and max_tokens
  int n = 1;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

// A prompt as text or as token ids.
using PromptInput = std::variant<std::string, std::vector<int32_t>>;

struct CompletionRequest : GenerationRequest {
  PromptInput prompt;
  bool echo = false;
};

struct ChatRequest : GenerationRequest {
  std::vector<ChatMessage> messages;
  bool add_generation_prompt = true;  // vLLM extension
};

// Both throw ApiError (400) naming the field.
CompletionRequest parse_completion_request(const nlohmann::json& body);
ChatRequest parse_chat_request(const nlohmann::json& body);

}  // namespace morphserve::server
