#pragma once
// `morphserve experiment CONFIG`: the same workload replayed against a fresh server per arm
// (--morph off, static-w4, dynamic in each --mode...), then one comparison table and one SVG
// with the arms' timelines stacked (DESIGN.md §1).
#include <CLI/CLI.hpp>

namespace morphserve::cli {

void add_experiment_command(CLI::App& app);

}  // namespace morphserve::cli
