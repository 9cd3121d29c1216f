#pragma once
// One completion request as the replay client sends it: on a fresh connection, streamed, with
// every token's arrival time recorded as the SSE chunks come in. Every way it can go wrong ends in
// RequestRecord::error, never in an exception: one failed request must not stop a run.
#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

#include "bench/request_record.h"
#include "bench/server_url.h"

namespace morphserve::bench {

struct CompletionCall {
  std::string path = "/v1/completions";  // below the URL's base path
  bool chat = false;                     // the body and chunks have chat's shape (messages, delta.content)
  std::string body;                      // the JSON body, ready to send
  double timeout_seconds = 600.0;        // from the send to the last byte
  bool exact_prompt_tokens = true;       // false: take usage.prompt_tokens when the server reports it
};

// Sends the call now and fills `record`'s send, first-token, token, end times (seconds from
// `origin`), output and prompt token counts, the output text, HTTP status and error. The record's index,
// scheduled_seconds, prompt_tokens (as sent) and max_tokens are the caller's.
//
// A streamed answer counts one token per chunk whose choice has text or logprobs (or, on the
// completions API, a chunk with empty text that does not finish the choice: vLLM sends those for
// tokens whose text is not complete yet). A server that holds back undecodable text (llama-server, morphserve) may
// send no chunk for some tokens, so a finishing chunk without text counts as the first token when
// none came before it. output_tokens is usage.completion_tokens when reported, else that count.
// A whole JSON answer (stream off, or a server that does not stream) has no token times.
// Errors: "connection failed: ...", "HTTP 500: <the body's message>", "stream error: ...",
// "timed out after ...", "stream ended without [DONE] ...", "stream broken: ...".
void run_completion(const ServerUrl& url, const std::string& api_key, const CompletionCall& call,
                    std::chrono::steady_clock::time_point origin, RequestRecord& record);

}  // namespace morphserve::bench
