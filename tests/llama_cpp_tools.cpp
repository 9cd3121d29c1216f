#include "llama_cpp_tools.h"

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "test_data.h"

namespace morphserve::testing {

namespace {

namespace fs = std::filesystem;

fs::path shared_llama_cpp_bin() {
  if (const char* env = std::getenv("MORPHSERVE_LLAMA_CPP"); env && *env) return fs::path(env) / "bin";
  return shared_data_dir().parent_path() / "tools" / "llama.cpp" / "bin";
}

// A stored symlink: a file of a few bytes whose whole content is another file's name here.
std::string link_target(const fs::path& file, const fs::path& dir) {
  std::error_code ec;
  if (fs::is_symlink(file, ec) || fs::file_size(file, ec) > 255) return {};
  std::ifstream in(file);
  std::string name((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (name.empty() || name.find('/') != std::string::npos || !fs::exists(dir / name, ec)) return {};
  return name;
}

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

struct BinDir {
  fs::path dir;
  std::string unavailable_reason;
};

// Whether the programs in `dir` can run on this CPU: `llama-server --version` dies of SIGILL at
// start-up where the CPU lacks an instruction set they were built for. Any other failure is not a
// reason to skip: the tests then run and report what went wrong.
bool killed_by_illegal_instruction(const fs::path& dir) {
  const std::string command = "LD_LIBRARY_PATH=" + quote(dir.string()) + " " + quote((dir / "llama-server").string()) +
                              " --version > /dev/null 2>&1";
  const int status = std::system(command.c_str());
  if (status == -1) return false;
  // The shell reports a child killed by signal s as exit status 128 + s.
  return (WIFSIGNALED(status) && WTERMSIG(status) == SIGILL) ||
         (WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGILL);
}

BinDir make_bin_dir() {
  const fs::path source = shared_llama_cpp_bin();
  std::error_code ec;
  if (!fs::is_regular_file(source / "llama-quantize", ec)) {
    return {{}, "the prebuilt llama.cpp (" + source.parent_path().string() + ", see its README) is not here"};
  }
  const fs::path dir = fs::temp_directory_path() / ("morphserve-llama-cpp-" + std::to_string(::getuid()));
  fs::create_directories(dir, ec);
  for (const fs::directory_entry& entry : fs::directory_iterator(source, ec)) {
    const fs::path link = dir / entry.path().filename();
    const std::string target = link_target(entry.path(), source);
    const fs::path wanted = target.empty() ? entry.path() : fs::path(target);
    std::error_code read_ec;
    if (fs::is_symlink(link, read_ec) && fs::read_symlink(link, read_ec) == wanted) continue;
    fs::remove(link, ec);
    // Another test process may have made it meanwhile; either link is the same.
    fs::create_symlink(wanted, link, ec);
  }
  if (killed_by_illegal_instruction(dir)) {
    return {{}, "the prebuilt llama.cpp at " + dir.string() +
                    " cannot run on this CPU (killed by SIGILL: it is built for AVX-512, see its README)"};
  }
  return {dir, {}};
}

const BinDir& bin_dir() {
  static const BinDir found = make_bin_dir();
  return found;
}

}  // namespace

fs::path llama_cpp_bin_dir() { return bin_dir().dir; }

const std::string& llama_cpp_unavailable_reason() { return bin_dir().unavailable_reason; }

std::string llama_cpp_command(const std::string& tool, const std::vector<std::string>& args) {
  const fs::path dir = llama_cpp_bin_dir();
  std::string command = "LD_LIBRARY_PATH=" + quote(dir.string()) + " " + quote((dir / tool).string());
  for (const std::string& arg : args) command += " " + quote(arg);
  return command;
}

ToolResult run_llama_cpp_tool(const std::string& tool, const std::vector<std::string>& args) {
  ToolResult result;
  if (llama_cpp_bin_dir().empty()) return result;
  FILE* pipe = ::popen((llama_cpp_command(tool, args) + " 2>&1").c_str(), "r");
  if (!pipe) return result;
  std::array<char, 4096> buffer{};
  size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.output.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

}  // namespace morphserve::testing
