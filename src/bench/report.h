#pragma once
// A run written down: the JSON file `bench --out` saves (every request with all its times, every
// server sample, the settings and the summary) and `experiment` reloads, and the tables people
// read in a terminal or paste into markdown.
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/request_record.h"
#include "bench/stats.h"

namespace morphserve::bench {

// Schema tag written into every run file, so a reader can tell a run from any other JSON.
inline constexpr const char* kRunFormat = "morphserve-bench-run";
inline constexpr int kRunFormatVersion = 1;

// Times are seconds; NaN summary values become null.
nlohmann::json to_json(const BenchRun& run, const BenchSummary& summary, const Slo& slo);
// Reads what to_json wrote back into a run (the summary is recomputed with summarize()).
// InvalidArgument naming the field for anything missing or of the wrong type.
BenchRun run_from_json(const nlohmann::json& json);
// The SLO a run file was written with (0 = not set when the file has none).
Slo slo_from_json(const nlohmann::json& json);
nlohmann::json summary_to_json(const BenchSummary& summary);

// A multi-line table for a terminal: counts, throughput, SLO violations and goodput, then
// TTFT/TPOT/ITL/E2E mean, P50, P90, P95, P99 and max in milliseconds.
std::string summary_table(const BenchSummary& summary, const Slo& slo);

// An extra column of comparison_table, such as a quality score: one value per arm, in arm order
// (missing values show as "-").
struct ExtraColumn {
  std::string name;
  std::vector<std::string> values;
};

// One markdown row per arm, after a line stating the SLO:
// | arm | SLO violations | P95 TTFT | P99 TPOT | throughput | goodput | mean layers quantized | extra... |
std::string comparison_table(const std::vector<std::pair<std::string, BenchSummary>>& arms, const Slo& slo,
                             const std::vector<ExtraColumn>& extra = {});

}  // namespace morphserve::bench
