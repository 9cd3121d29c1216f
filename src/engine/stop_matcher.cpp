#include "engine/stop_matcher.h"

#include <algorithm>

namespace morphserve {

StopMatcher::Result StopMatcher::push(const std::string& text) {
  Result result;
  pending_ += text;
  if (stops_.empty()) {
    result.text = std::move(pending_);
    pending_.clear();
    return result;
  }
  // The earliest complete stop string wins.
  size_t first = std::string::npos;
  for (const std::string& stop : stops_) first = std::min(first, pending_.find(stop));
  if (first != std::string::npos) {
    result.text = pending_.substr(0, first);
    result.stopped = true;
    pending_.clear();
    return result;
  }
  // Hold back the longest tail that is a prefix of some stop string.
  size_t hold = 0;
  for (const std::string& stop : stops_) {
    for (size_t n = std::min(stop.size() - 1, pending_.size()); n > hold; --n) {
      if (pending_.compare(pending_.size() - n, n, stop, 0, n) == 0) {
        hold = n;
        break;
      }
    }
  }
  result.text = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return result;
}

std::string StopMatcher::flush() {
  std::string out = std::move(pending_);
  pending_.clear();
  return out;
}

}  // namespace morphserve
