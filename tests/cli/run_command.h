#pragma once
// Runs the morphserve binary as a user would and captures what it prints.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "test_data.h"

namespace morphserve::testing {

struct CommandResult {
  int exit_code = -1;    // -1 when killed by a signal
  int signal = 0;
  std::string out;
  std::string err;
};

inline CommandResult run_morphserve(const std::string& args) {
  const auto err_path = std::filesystem::temp_directory_path() /
                        ("morphserve_cli_err_" + std::to_string(::getpid()) + "_" + std::to_string(std::rand()));
  const std::string command = morphserve_binary() + " " + args + " 2>" + err_path.string();
  CommandResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return result;
  std::array<char, 4096> buffer{};
  size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.out.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  std::ifstream err(err_path);
  std::stringstream text;
  text << err.rdbuf();
  result.err = text.str();
  std::filesystem::remove(err_path);
  return result;
}

}  // namespace morphserve::testing
