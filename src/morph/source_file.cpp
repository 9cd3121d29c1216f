#include "morph/source_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/error.h"

namespace morphserve {

namespace {
int64_t mtime_ns(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}
}  // namespace

SourceFile::SourceFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail<ModelFileError>("cannot open {}: {}", path, std::strerror(errno));
  struct stat st{};
  if (::fstat(fd_, &st) != 0) {
    const int err = errno;
    ::close(fd_);
    fail<ModelFileError>("cannot stat {}: {}", path, std::strerror(err));
  }
  device_ = static_cast<uint64_t>(st.st_dev);
  inode_ = static_cast<uint64_t>(st.st_ino);
  size_ = static_cast<uint64_t>(st.st_size);
  mtime_ns_ = mtime_ns(st);
}

SourceFile::~SourceFile() {
  if (fd_ >= 0) ::close(fd_);
}

std::string SourceFile::problem() const {
  // The open descriptor first: it still names our file when the path no longer does.
  struct stat open_st{};
  if (::fstat(fd_, &open_st) != 0) return fmt::format("{} can no longer be read: {}", path_, std::strerror(errno));
  const uint64_t now = static_cast<uint64_t>(open_st.st_size);
  if (now < size_) {
    return fmt::format("{} was truncated on disk from {} to {} bytes", path_, size_, now);
  }
  if (now != size_ || mtime_ns(open_st) != mtime_ns_) return fmt::format("{} was modified on disk", path_);
  struct stat path_st{};
  if (::stat(path_.c_str(), &path_st) != 0) {
    return fmt::format("{} was deleted or renamed ({})", path_, std::strerror(errno));
  }
  if (static_cast<uint64_t>(path_st.st_dev) != device_ || static_cast<uint64_t>(path_st.st_ino) != inode_) {
    return fmt::format("{} was replaced by another file", path_);
  }
  return {};
}

void SourceFile::read(uint64_t offset, std::byte* out, size_t bytes) const {
  if (std::string why = problem(); !why.empty()) throw ModelFileError(why);
  size_t done = 0;
  while (done < bytes) {
    const ssize_t n = ::pread(fd_, out + done, bytes - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      fail<ModelFileError>("reading {} bytes at offset {} of {} failed: {}", bytes, offset, path_, std::strerror(errno));
    }
    if (n == 0) {
      fail<ModelFileError>("{} ends at byte {} but {} bytes were expected there: it was truncated on disk", path_,
                           offset + done, bytes - done);
    }
    done += static_cast<size_t>(n);
  }
}

}  // namespace morphserve
