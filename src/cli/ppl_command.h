#pragma once
#include <CLI/CLI.hpp>
namespace morphserve::cli {
// `morphserve ppl`: perplexity of a model (at any per-layer precision) on a text file.
void add_ppl_command(CLI::App& app);
}  // namespace morphserve::cli
