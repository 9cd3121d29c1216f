#pragma once
// A workload to replay: when each request arrives and how long its prompt and its output are.
// Loaded from a real trace (trace_loader.h) or generated (synthetic.h), then shaped (shaping.h).
// bench/ is a client: it never includes engine code (DESIGN.md §2).
#include <cstdint>
#include <string>
#include <vector>

namespace morphserve::bench {

struct WorkloadRequest {
  double arrival_seconds = 0.0;  // from the start of the run (the first request of a trace is at 0)
  int64_t prompt_tokens = 0;
  int64_t output_tokens = 0;
};

struct Workload {
  std::string source;                    // "azure:path", "synthetic:poisson rate=4 ..." — for reports
  std::vector<WorkloadRequest> requests;  // sorted by arrival
};

}  // namespace morphserve::bench
