#pragma once
#include <CLI/CLI.hpp>
namespace morphserve::cli {
// `morphserve quantize`: writes a model's W8/W4 replica file (DESIGN.md §4) ahead of serving it.
void add_quantize_command(CLI::App& app);
}  // namespace morphserve::cli
