#pragma once
// Fitting a real trace to a small server: cut a window out of it, stretch or squeeze its time,
// thin or multiply its requests, and scale or cap its lengths (the paper replays Azure traces
// downscaled the same way).
#include <cstdint>
#include <string_view>

#include "bench/workload.h"

namespace morphserve::bench {

struct Shaping {
  double window_start = 0, window_length = 0;  // seconds of the source trace; length 0: to its end
  double time_scale = 1;   // multiplies every arrival time (inter-arrival gaps): 2 = half the rate
  double rate_scale = 1;   // 0.5 keeps each request with probability .5 (seeded); 2.5 sends each
                           // twice, plus a third time with probability .5
  double repeat_jitter_seconds = 0.01;  // repeats land uniformly within this after the original,
                                        // so copies do not arrive in the same microsecond
  double prompt_scale = 1, output_scale = 1;  // lengths are multiplied, then rounded
  int64_t max_prompt = 0, max_output = 0;     // caps after scaling; 0: no cap
  int64_t min_prompt = 1, min_output = 1;     // floors after capping; never below 1
  int64_t max_requests = 0;                   // keep the first N after everything else; 0: all
  uint64_t seed = 0;                          // for rate_scale's draws and the jitter
};

// Applies, in order: the window (arrivals in [start, start+length), re-based so the window start
// is 0), the time scale, the rate scale, length scaling with caps and floors, then max_requests.
// The result is sorted by arrival; its source says what was done. InvalidArgument for negative or
// non-finite scales and windows, or a floor above its cap.
Workload shape(const Workload& workload, const Shaping& shaping);

struct Window {
  double start = 0;
  double length = 0;  // 0: to the end of the trace
};

// "START:LEN" with durations as the CLI takes them ("0:72", "10m:90s"); "START:" runs to the end.
Window parse_window(std::string_view text);

}  // namespace morphserve::bench
