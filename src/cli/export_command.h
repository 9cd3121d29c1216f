#pragma once
// `morphserve export`: writes any model morphserve loads (a dummy shape, a GGUF, later a Hugging
// Face checkpoint) as a GGUF file in the precision it was loaded at, for llama.cpp and for tests.
#include <CLI/CLI.hpp>

namespace morphserve::cli {

void add_export_command(CLI::App& app);

}  // namespace morphserve::cli
