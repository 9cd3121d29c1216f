#pragma once
// Quality of an experiment arm (issue: the paper's quality column), measured two ways:
//  (a) token agreement: the share of output tokens equal, position by position, to the
//      full-precision greedy output for the same request (a reference run replayed one request
//      at a time, so batching cannot move it);
//  (b) the perplexity of the precision states the run went through, each weighted by the tokens
//      generated while the server was in it (the /morph samples say when it was in which).
#include <cstdint>
#include <map>
#include <string>

#include "bench/request_record.h"

namespace morphserve {
class Tokenizer;
class ThreadPool;
}  // namespace morphserve

namespace morphserve::cli {

struct TokenAgreement {
  double share = 0.0;          // equal tokens / reference tokens, over requests both runs completed
  int64_t reference_tokens = 0;
  int64_t requests = 0;
};
TokenAgreement token_agreement(const bench::BenchRun& run, const bench::BenchRun& reference, const Tokenizer& tokenizer);

// Generated tokens per precision map ("0:f16,1:q4_0,..."), attributing each streamed token to
// the last sample taken at or before it (the first sample's map before any sample).
std::map<std::string, int64_t> tokens_per_precision_state(const bench::BenchRun& run);

struct WeightedPerplexity {
  double perplexity = 0.0;  // Σ tokens·ppl / Σ tokens
  std::map<std::string, double> per_state;  // ppl of every state seen
};
// Measures each state's perplexity on `text` (windows of ctx, up to max_tokens) with the model at
// `model_source` converted to that state, caching by state across arms.
class PerplexityCache {
 public:
  PerplexityCache(std::string model_source, std::string text_path, int64_t ctx, int64_t max_tokens, ThreadPool& pool);
  double perplexity(const std::string& precision_map);
  WeightedPerplexity weighted(const std::map<std::string, int64_t>& tokens_per_state);

 private:
  std::string model_source_;
  std::string text_;
  int64_t ctx_;
  int64_t max_tokens_;
  ThreadPool& pool_;
  std::map<std::string, double> cache_;
};

}  // namespace morphserve::cli
