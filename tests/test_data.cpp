#include "test_data.h"

#include <cstdlib>

namespace morphserve::testing {

std::filesystem::path shared_data_dir() {
  if (const char* env = std::getenv("MORPHSERVE_SHARED_DATA"); env && *env) return env;
  return MORPHSERVE_SHARED_DATA;
}

std::filesystem::path shared_data_file(const std::string& relative) {
  std::filesystem::path path = shared_data_dir() / relative;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return {};
  return path;
}

std::string morphserve_binary() { return MORPHSERVE_BINARY; }

}  // namespace morphserve::testing
