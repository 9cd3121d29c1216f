#pragma once
// Parsing of the Prometheus text exposition format (version 0.0.4), as servers answer GET /metrics.
// Lenient on purpose: a line that cannot be read is skipped, never fatal, because a benchmark must
// not stop over a metric it does not even plot.
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace morphserve::bench {

struct PrometheusSample {
  std::string name;                           // e.g. "vllm:num_requests_running"
  std::map<std::string, std::string> labels;  // unescaped values, any order in the text
  double value = 0.0;                         // NaN, +Inf and -Inf included
};

// Every sample line of the text; comments (# HELP, # TYPE), blank lines and malformed lines are
// skipped. A trailing timestamp is ignored.
std::vector<PrometheusSample> parse_prometheus_text(std::string_view text);

}  // namespace morphserve::bench
