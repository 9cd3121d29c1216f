#include "model/gguf_cursor.h"

#include <limits>

#include "core/error.h"

namespace morphserve {

std::string GgufCursor::read_string() {
  const uint64_t length = read<uint64_t>();
  if (length > remaining()) {
    // A hostile length (2^62...) must not reach std::string's allocator.
    fail<ModelFileError>(
        "{} is truncated or corrupt: {} has a string length of {} bytes, but only {} bytes remain in the file",
        path_, context_, length, remaining());
  }
  std::string s(reinterpret_cast<const char*>(bytes_.data() + position_), static_cast<size_t>(length));
  position_ += static_cast<size_t>(length);
  return s;
}

void GgufCursor::fail_truncated(uint64_t count) const {
  const uint64_t end = count > std::numeric_limits<uint64_t>::max() - position_
                           ? std::numeric_limits<uint64_t>::max()
                           : position_ + count;
  fail<ModelFileError>("{} is truncated: {} needs bytes up to {} but the file has {}", path_, context_, end,
                       bytes_.size());
}

}  // namespace morphserve
