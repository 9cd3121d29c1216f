#pragma once
// A file the replica store copies swaps from (the model GGUF, the replica GGUF), read with pread
// rather than through its mapping: a file truncated on disk while we serve then gives a short
// read, an error we can refuse a swap with, where touching the mapping past the new end would
// kill the process with SIGBUS. It also remembers which file it opened (device, inode, size,
// modification time), so a file deleted, replaced, truncated or rewritten in place is noticed
// before its bytes are trusted again.
#include <cstddef>
#include <cstdint>
#include <string>

namespace morphserve {

class SourceFile {
 public:
  // Opens `path` read-only and records its identity. Throws ModelFileError when it cannot.
  explicit SourceFile(const std::string& path);
  ~SourceFile();
  SourceFile(const SourceFile&) = delete;
  SourceFile& operator=(const SourceFile&) = delete;

  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }

  // Empty while the file at path() is still the file opened, unchanged; otherwise one sentence
  // saying what happened to it ("... was deleted", "... was truncated from X to Y bytes").
  std::string problem() const;

  // Reads `bytes` at `offset` into `out`. Throws ModelFileError naming the file when the file
  // changed (problem()) or the read comes up short or fails.
  void read(uint64_t offset, std::byte* out, size_t bytes) const;

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t device_ = 0;
  uint64_t inode_ = 0;
  uint64_t size_ = 0;
  int64_t mtime_ns_ = 0;
};

}  // namespace morphserve
