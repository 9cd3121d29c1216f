#pragma once
// The morphing soak (`morphserve soak`): one server in --morph dynamic with a tight budget, driven
// through alternating burst and idle phases for a set time, with clients that hang up at random.
// After every cycle it checks what must hold on a server's worst day:
//   - every request completed or got a clear error (none hung, none broke, no 5xx but 429/503);
//   - KV blocks are conserved (used + free = total in every sample, and 0 used when idle);
//   - the budget was never exceeded: the engine's ledger (its peak) and the process's RSS, which
//     may not grow past what it was at start plus the budget's headroom then;
//   - when idle, every layer is back at full precision and the KV pool at its base size;
//   - RSS does not grow from cycle to cycle.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace morphserve::cli {

struct SoakOptions {
  std::string model = "dummy:tiny";
  std::string memory_budget = "3MiB";
  double duration_seconds = 600.0;
  double burst_seconds = 6.0;
  double idle_timeout_seconds = 30.0;  // longest wait for the server to settle after a burst
  int clients = 24;
  double disconnect_fraction = 0.2;    // requests whose client hangs up part-way
  uint64_t seed = 1;
  uint64_t rss_margin_bytes = 16ull << 20;
  std::vector<std::string> server_args;  // appended to the server's command line
  std::string server_log;                // the server's stderr; empty: a temporary file
};

// What one cycle (a burst, then the wait for idle) saw.
struct SoakCycle {
  int index = 0;
  int64_t requests = 0;
  int64_t completed = 0;
  int64_t refused = 0;        // a clean 4xx, 429 or 503
  int64_t disconnected = 0;   // the client hung up on purpose
  int64_t failed = 0;         // neither completed nor a clear error: a defect
  int64_t swaps_down = 0;
  int64_t swaps_up = 0;
  int peak_quantized_layers = 0;
  int64_t peak_kv_blocks = 0;
  int64_t samples = 0;
  uint64_t max_rss_bytes = 0;
  uint64_t idle_rss_bytes = 0;
  double settle_seconds = 0.0;  // burst end to idle
  std::vector<std::string> problems;  // checks that failed, one sentence each
};

struct SoakReport {
  std::vector<SoakCycle> cycles;
  uint64_t budget_bytes = 0;
  uint64_t budget_peak_bytes = 0;   // the ledger's peak, over the whole run
  uint64_t start_rss_bytes = 0;     // after start-up, before the first burst
  uint64_t rss_limit_bytes = 0;     // start RSS + budget headroom at start + margin
  int64_t base_kv_blocks = 0;
  int n_layers = 0;
  std::vector<std::string> problems;  // run-wide checks that failed
  double seconds = 0.0;

  bool passed() const;
  nlohmann::json to_json() const;
  std::string summary() const;  // the table `soak` prints
};

// Starts `binary serve` and runs the soak. Throws InvalidArgument when the server cannot start;
// everything that goes wrong afterwards is a problem in the report.
SoakReport run_soak(const std::string& binary, const SoakOptions& options);

}  // namespace morphserve::cli
