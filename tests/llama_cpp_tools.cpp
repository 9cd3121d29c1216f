#include "llama_cpp_tools.h"

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
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

fs::path make_bin_dir() {
  const fs::path source = shared_llama_cpp_bin();
  std::error_code ec;
  if (!fs::is_regular_file(source / "llama-quantize", ec)) return {};
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
  return dir;
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

}  // namespace

fs::path llama_cpp_bin_dir() {
  static std::once_flag once;
  static fs::path dir;
  std::call_once(once, [] { dir = make_bin_dir(); });
  return dir;
}

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
