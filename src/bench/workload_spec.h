#pragma once
// What a user asks to replay: a trace file or a synthetic spec, and how to shape it. Shared by
// `morphserve bench` (flags) and `morphserve experiment` (the file's "workload" section), so both
// build the same workload from the same description.
#include <cstdint>
#include <string>

#include "bench/workload.h"

namespace morphserve::bench {

struct WorkloadSpec {
  std::string trace;                 // a trace file, or a "synthetic:..." spec
  std::string trace_format = "auto";  // auto, azure, burstgpt or mooncake
  std::string synthetic;             // a synthetic spec, with or without its "synthetic:" tag
  std::string window;                // "START:LEN" or empty (the whole trace)
  double time_scale = 1, rate_scale = 1, prompt_scale = 1, output_scale = 1;
  int64_t max_prompt = 0, max_output = 0, max_requests = 0;
  uint64_t seed = 0;
};

// Loads or generates the workload, then shapes it. Throws InvalidArgument unless exactly one of
// trace and synthetic is given, and for anything the loaders or shaping refuse.
Workload build_workload(const WorkloadSpec& spec);

}  // namespace morphserve::bench
