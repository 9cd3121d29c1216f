#pragma once
#include <CLI/CLI.hpp>
namespace morphserve::cli {
// `morphserve serve`: the OpenAI-compatible HTTP server (see src/server/README.md).
void add_serve_command(CLI::App& app);
}  // namespace morphserve::cli
