#pragma once
// `morphserve soak`: the morphing soak (cli/soak_run.h) from the command line; it exits 1 when a
// check failed, so scripts/soak.sh and the test suite can run it as they are.
#include <CLI/CLI.hpp>

namespace morphserve::cli {

void add_soak_command(CLI::App& app);

}  // namespace morphserve::cli
