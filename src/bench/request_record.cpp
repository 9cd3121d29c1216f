#include "bench/request_record.h"

namespace morphserve::bench {

std::optional<double> RequestRecord::ttft() const {
  if (!first_token_seconds) return std::nullopt;
  return *first_token_seconds - send_seconds;
}

std::optional<double> RequestRecord::tpot() const {
  // The first token carries the prefill; TPOT is the decode pace after it, as vLLM and DistServe
  // define it, so it needs at least one token after the first.
  if (!first_token_seconds || output_tokens < 2) return std::nullopt;
  return (end_seconds - *first_token_seconds) / static_cast<double>(output_tokens - 1);
}

std::vector<double> RequestRecord::inter_token_gaps() const {
  std::vector<double> gaps;
  if (token_seconds.size() < 2) return gaps;
  gaps.reserve(token_seconds.size() - 1);
  for (size_t i = 1; i < token_seconds.size(); ++i) gaps.push_back(token_seconds[i] - token_seconds[i - 1]);
  return gaps;
}

}  // namespace morphserve::bench
