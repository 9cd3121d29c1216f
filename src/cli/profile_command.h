#pragma once
#include <CLI/CLI.hpp>
namespace morphserve::cli {
// `morphserve profile`: ranks the decoder layers by importance (LIS, MorphServe §4.2) on
// calibration text and writes the swap order that `serve --morph-order` reads.
void add_profile_command(CLI::App& app);
}  // namespace morphserve::cli
