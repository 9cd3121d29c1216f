#include "engine/request.h"

#include "core/error.h"

namespace morphserve {

void RequestParams::validate() const {
  if (prompt.empty()) fail<InvalidArgument>("the prompt is empty");
  if (max_tokens < 1) fail<InvalidArgument>("max_tokens must be at least 1, got {}", max_tokens);
  sampling.validate();
  if (!(presence_penalty >= -2.0f && presence_penalty <= 2.0f)) {
    fail<InvalidArgument>("presence_penalty must be between -2 and 2, got {}", presence_penalty);
  }
  if (!(frequency_penalty >= -2.0f && frequency_penalty <= 2.0f)) {
    fail<InvalidArgument>("frequency_penalty must be between -2 and 2, got {}", frequency_penalty);
  }
  if (logprobs < -1 || logprobs > 20) fail<InvalidArgument>("logprobs must be between 0 and 20, got {}", logprobs);
  for (const std::string& s : stop) {
    if (s.empty()) fail<InvalidArgument>("stop strings must not be empty");
  }
}

std::string_view finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Cancelled: return "cancelled";
    case FinishReason::Error: return "error";
    case FinishReason::QueueTimeout: return "queue_timeout";
  }
  return "unknown";
}

}  // namespace morphserve
