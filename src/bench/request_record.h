#pragma once
// What the replay client records about one request, and what it samples from the server while
// the run goes on. All times are seconds from the start of the run (steady clock).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bench/workload.h"

namespace morphserve::bench {

struct RequestRecord {
  size_t index = 0;                 // in the workload
  double scheduled_seconds = 0.0;   // the workload's arrival time
  double send_seconds = 0.0;        // when the request was actually sent
  std::optional<double> first_token_seconds;
  std::vector<double> token_seconds;  // arrival of every streamed token (one per SSE chunk with text or a token)
  double end_seconds = 0.0;
  int64_t prompt_tokens = 0;        // sent
  int64_t max_tokens = 0;           // asked for
  int64_t output_tokens = 0;        // received (usage.completion_tokens when reported, else counted)
  int http_status = 0;              // 0: no response
  std::string error;                // empty when the request completed
  std::string output_text;          // the streamed text, concatenated (quality comparisons)

  bool ok() const { return error.empty() && http_status == 200; }
  // Time to first token from the send; nullopt without a first token.
  std::optional<double> ttft() const;
  // Mean time per output token after the first: (end - first) / (output_tokens - 1); nullopt for
  // fewer than two tokens.
  std::optional<double> tpot() const;
  // Gaps between consecutive tokens.
  std::vector<double> inter_token_gaps() const;
  double e2e() const { return end_seconds - send_seconds; }
};

// One poll of the server's /metrics (and /morph when it answers): the series the timeline plots.
struct ServerSample {
  double seconds = 0.0;
  std::map<std::string, double> values;  // e.g. "num_requests_running", "kv_blocks_total", "layers_quantized_w4"
  // From /morph when the server has it: the precision of every layer now, in --precision syntax
  // ("all:f16", "0:q4_0,3:q4_0"), so a run's precision states can be measured afterwards.
  std::string precision_map;
};

struct BenchRun {
  std::string url;
  std::string model;
  Workload workload;
  std::vector<RequestRecord> records;  // one per workload request, in workload order
  std::vector<ServerSample> samples;
  double duration_seconds = 0.0;       // first send to last end
  std::map<std::string, std::string> settings;  // flags of the run, for the report
};

}  // namespace morphserve::bench
