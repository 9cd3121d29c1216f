#pragma once
// What a client asks the engine for, and what comes back on the request's stream.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/generated_token.h"
#include "engine/sampler.h"

namespace morphserve {

struct RequestParams {
  std::vector<int32_t> prompt;  // token ids, BOS included when the model wants one
  int64_t max_tokens = 16;
  SamplingParams sampling;
  float presence_penalty = 0.0f;   // OpenAI semantics, [-2, 2]
  float frequency_penalty = 0.0f;  // OpenAI semantics, [-2, 2]
  std::vector<std::string> stop;   // generation ends before the first occurrence of any of these
  bool ignore_eos = false;         // keep going past EOS (benchmarks, as vLLM has)
  int logprobs = -1;               // -1: none; 0: the chosen token's; n: also the n most likely

  // Throws InvalidArgument naming the parameter and its valid range.
  void validate() const;
};

// QueueTimeout: the request waited longer than EngineConfig::queue_timeout without being scheduled.
enum class FinishReason { Stop, Length, Cancelled, Error, QueueTimeout };
// "stop", "length", "cancelled", "error", "queue_timeout"
std::string_view finish_reason_name(FinishReason reason);


// One update on a request's stream. Text is released only once it cannot be the start of a stop
// string, so concatenating every update's text gives exactly the final completion.
struct RequestOutput {
  std::vector<GeneratedToken> tokens;
  std::string text;
  std::optional<FinishReason> finish;  // set on the last update only
  std::string error;                   // when finish == Error or QueueTimeout: why
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;       // so far
};

}  // namespace morphserve
