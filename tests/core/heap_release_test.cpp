// release_free_heap_memory gives freed small blocks' pages back: resident memory falls.
#include "core/heap_release.h"

#include <algorithm>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sanitizers.h"

namespace morphserve {
namespace {

// Resident set size of this process, from /proc/self/statm (pages).
long resident_pages() {
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  return resident;
}

TEST(HeapRelease, GivesFreedSmallBlocksBack) {
#if !defined(__GLIBC__)
  GTEST_SKIP() << "release_free_heap_memory only trims glibc's allocator";
#endif
  if (MORPHSERVE_UNDER_ASAN) GTEST_SKIP() << "ASan's allocator keeps freed memory in quarantine";
  // 64 MiB in 1 KiB blocks (below the mmap threshold, so they live in the heap), then free all
  // but the last: the heap top stays in use, so only a trim of the free middle returns the pages.
  std::vector<std::unique_ptr<char[]>> blocks(64 * 1024);
  for (auto& b : blocks) {
    b.reset(new char[1024]);
    std::fill_n(b.get(), 1024, 'x');  // touch every page
  }
  for (size_t i = 0; i + 1 < blocks.size(); ++i) blocks[i].reset();
  const long before = resident_pages();
  EXPECT_TRUE(release_free_heap_memory());
  const long after = resident_pages();
  const long page = 4096;
  EXPECT_LT(after, before - (32L << 20) / page) << "resident pages before " << before << ", after " << after;
}

}  // namespace
}  // namespace morphserve
