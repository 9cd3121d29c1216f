#pragma once
// Replays a workload against an OpenAI-compatible server (vLLM, llama.cpp's llama-server,
// morphserve): every request is sent at its arrival time, counted on the steady clock from the
// start of the run, on a connection of its own, streamed, whatever the others are doing. The
// server's /metrics (and /morph) are sampled alongside (server_sampler.h).
//
// Each request asks for exactly the trace's output length: "max_tokens": N, "ignore_eos": true,
// "temperature": 0, and "stream_options": {"include_usage": true} to learn the counts. A request
// that cannot be sent on time (the machine is slow, or --max-in-flight holds it back) goes late
// and says so: its send_seconds is after its scheduled_seconds.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "bench/prompt_source.h"
#include "bench/request_record.h"
#include "bench/workload.h"

namespace morphserve::bench {

struct ReplayOptions {
  std::string url;                          // http://host:port
  std::string model;                        // empty: the first id from GET /v1/models
  std::string api_key;                      // sent as Authorization: Bearer
  std::string endpoint = "/v1/completions"; // or /v1/chat/completions (text prompts only)
  // Prompts of the requests' lengths; null: pseudo-random ids (PromptSourceOptions' defaults).
  std::shared_ptr<const PromptSource> prompts;
  double request_timeout_seconds = 600.0;   // send to last byte
  int64_t max_in_flight = 0;                // 0: unbounded (the trace decides)
  bool stream = true;                       // off: no token times, only end-to-end latency
  nlohmann::json extra_fields = nlohmann::json::object();  // merged into every body; null removes a field
  double sample_interval_seconds = 1.0;     // /metrics polling; 0: none
  // Before the run, one 1-token request with the prompt source's highest id: a server that
  // rejects the prompts (ids beyond its vocabulary, a wrong model name) fails the run at once
  // rather than every request failing.
  bool preflight = true;
};

struct ReplayProgress {
  int64_t total = 0;
  int64_t sent = 0;
  int64_t done = 0;
  int64_t in_flight = 0;
  int64_t errors = 0;
};
// Called (one call at a time) after each send and each completion.
using ProgressFn = std::function<void(const ReplayProgress&)>;

// Runs the whole workload and returns what happened, one record per request. Throws
// InvalidArgument only before the run starts (bad options, server unreachable or refusing the
// preflight); failed requests during the run are recorded, never thrown.
BenchRun replay(const Workload& workload, const ReplayOptions& options, const ProgressFn& progress = nullptr);

// The JSON body sent for one request (exposed for tests and --dry-run style checks).
nlohmann::json completion_body(const ReplayOptions& options, const std::string& model, nlohmann::json prompt,
                               int64_t max_tokens);

}  // namespace morphserve::bench
