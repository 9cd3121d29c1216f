#pragma once
// The prebuilt llama.cpp beside the project (../shared/tools/llama.cpp): the reference engine some
// tests compare against (formats it writes with llama-quantize, logits its server computes). It is
// a measuring stick, never a dependency: tests that need it skip with a clear message without it.
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace morphserve::testing {

struct ToolResult {
  int exit_code = -1;  // -1 when it did not run or was killed by a signal
  std::string output;  // stdout and stderr together
};

// A folder holding runnable llama.cpp programs (llama-quantize, llama-server, ...) and their
// libraries, or empty when ../shared/tools/llama.cpp (MORPHSERVE_LLAMA_CPP overrides) is absent
// or cannot run on this CPU (llama_cpp_unavailable_reason() says which).
// The shared copy stores its library symlinks as small text files naming their targets, which
// the dynamic loader cannot follow; this folder (under the temp directory) has real links.
std::filesystem::path llama_cpp_bin_dir();

// Why llama_cpp_bin_dir() is empty, as a sentence for a skip message; empty when it is not.
// The prebuilt copy is built for AVX-512 (its README), so on an AVX2-only machine its programs
// die of SIGILL: that is a machine without the measuring stick, not a failing comparison.
const std::string& llama_cpp_unavailable_reason();

// Runs one llama.cpp program with the libraries of llama_cpp_bin_dir() and waits for it.
ToolResult run_llama_cpp_tool(const std::string& tool, const std::vector<std::string>& args);

// The command line (with LD_LIBRARY_PATH) that runs a tool; for tests that start it themselves.
std::string llama_cpp_command(const std::string& tool, const std::vector<std::string>& args);

}  // namespace morphserve::testing

// Skips the current test with a clear message when the prebuilt llama.cpp is absent or cannot run.
#define MORPHSERVE_REQUIRE_LLAMA_CPP()                                   \
  if (::morphserve::testing::llama_cpp_bin_dir().empty())                \
  GTEST_SKIP() << ::morphserve::testing::llama_cpp_unavailable_reason()  \
               << "; this comparison against it is skipped"
