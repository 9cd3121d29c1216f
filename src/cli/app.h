#pragma once
namespace morphserve::cli {
// Parses the command line, runs the chosen subcommand, and turns errors into one clear line on
// stderr and a non-zero exit code.
int run_app(int argc, char** argv);
}  // namespace morphserve::cli
