#pragma once
#include <CLI/CLI.hpp>
namespace morphserve::cli {
// `morphserve generate`: streams a continuation of a prompt to stdout.
void add_generate_command(CLI::App& app);
}  // namespace morphserve::cli
