#pragma once
// Stop strings over streamed text: holds back any tail that could still grow into a stop string,
// so text already sent to a client never has to be taken back.
#include <optional>
#include <string>
#include <vector>

namespace morphserve {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}

  struct Result {
    std::string text;   // safe to release now
    bool stopped = false;  // a stop string was found; text ends right before it
  };
  // Appends newly decoded text.
  Result push(const std::string& text);
  // End of generation: whatever was held back is released.
  std::string flush();

 private:
  std::vector<std::string> stops_;
  std::string pending_;
};

}  // namespace morphserve
