#pragma once
// --morph-log FILE: one JSON object per line for every morphing action (a swap started or
// finished, a restore aborted, a failure), with wall-clock and engine-clock timestamps and the
// signals that caused it. Lines are flushed as written so a crash loses nothing already decided.
#include <cstdio>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

namespace morphserve {

class MorphLog {
 public:
  // Empty path: logging is off. Throws InvalidArgument when the file cannot be opened.
  explicit MorphLog(const std::string& path);
  ~MorphLog();
  MorphLog(const MorphLog&) = delete;
  MorphLog& operator=(const MorphLog&) = delete;

  bool enabled() const { return file_ != nullptr; }
  // Adds "time" (ISO-8601 UTC with milliseconds) and writes the line.
  void write(nlohmann::json entry);

 private:
  std::mutex mutex_;
  std::FILE* file_ = nullptr;
};

}  // namespace morphserve
