#pragma once
// A one-line progress bar on stderr: redrawn in place on a terminal, printed every 10% otherwise
// (so logs and CI output stay readable).
#include <chrono>
#include <cstdint>
#include <string>

namespace morphserve::cli {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total);
  // Sets the progress and an optional note shown after the counts (e.g. "ppl 3.89").
  void update(int64_t done, const std::string& note = "");
  void finish();

 private:
  std::string label_;
  int64_t total_;
  bool tty_;
  int last_decile_ = -1;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace morphserve::cli
