#include "morph/morph_log.h"

#include <cerrno>
#include <chrono>
#include <cstring>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "core/error.h"

namespace morphserve {

MorphLog::MorphLog(const std::string& path) {
  if (path.empty()) return;
  file_ = std::fopen(path.c_str(), "a");
  if (!file_) fail<InvalidArgument>("cannot open morph log {}: {}", path, std::strerror(errno));
}

MorphLog::~MorphLog() {
  if (file_) std::fclose(file_);
}

void MorphLog::write(nlohmann::json entry) {
  if (!file_) return;
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  entry["time"] = fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03d}Z", fmt::gmtime(std::chrono::system_clock::to_time_t(now)), ms);
  const std::string line = entry.dump() + "\n";
  std::lock_guard lock(mutex_);
  std::fwrite(line.data(), 1, line.size(), file_);
  std::fflush(file_);
}

}  // namespace morphserve
