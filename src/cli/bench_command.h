#pragma once
#include <CLI/CLI.hpp>
namespace morphserve::cli {
// `morphserve bench`: replays a trace or a synthetic workload against any OpenAI-compatible
// server and reports latency percentiles, SLO violations and goodput (see src/bench/README.md).
void add_bench_command(CLI::App& app);
}  // namespace morphserve::cli
