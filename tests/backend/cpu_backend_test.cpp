// CpuBackend: resident memory only against the budget, copies that finish on their own thread and
// carry their errors, and nothing left reserved or in flight afterwards.
#include "backend/cpu_backend.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "core/error.h"

namespace morphserve {
namespace {

TEST(CpuBackend, AllocatesAgainstAnAccountAndGivesTheBytesBackWithTheBuffer) {
  MemoryBudget budget(1000);
  CpuBackend backend(budget);
  {
    ResidentBuffer a = backend.allocate("weights", 600);
    EXPECT_EQ(a.size(), 600u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data()) % 64, 0u);
    EXPECT_EQ(budget.held("weights"), 600u);
    EXPECT_THROW(backend.allocate("kv", 401), OutOfBudget);
    EXPECT_EQ(budget.held("kv"), 0u) << "a refusal reserves nothing";
    ResidentBuffer b = backend.allocate("kv", 400);
    ResidentBuffer moved = std::move(b);
    EXPECT_EQ(b.data(), nullptr);
    EXPECT_EQ(budget.used(), 1000u);
    backend.reassign("kv", "weights", 100);
    EXPECT_EQ(backend.budget().held("weights"), 700u);
    backend.reassign("weights", "kv", 100);
  }
  EXPECT_EQ(budget.used(), 0u);
}

TEST(CpuBackend, CopiesRunOffTheCallersThreadAndCarryTheirErrors) {
  MemoryBudget budget(1 << 20);
  CpuBackend backend(budget);
  ResidentBuffer dst = backend.allocate("a", 4096), other = backend.allocate("b", 4096);
  std::atomic<bool> release{false};
  const std::thread::id caller = std::this_thread::get_id();
  std::thread::id filler;
  CopyTicket fill = backend.copy_in(dst.data(), dst.size(), [&](std::byte* host) {
    filler = std::this_thread::get_id();
    while (!release.load()) std::this_thread::yield();
    std::memset(host, 0x5a, 4096);
  });
  EXPECT_TRUE(fill.valid());
  EXPECT_FALSE(fill.done()) << "polling never waits for the copy";
  release = true;
  fill.get();
  EXPECT_NE(filler, caller);
  EXPECT_EQ(dst.data()[4095], std::byte{0x5a});
  CopyTicket copy = backend.copy_within(other.data(), dst.data(), 4096);
  copy.get();
  EXPECT_EQ(std::memcmp(other.data(), dst.data(), 4096), 0);
  CopyTicket failing = backend.copy_in(dst.data(), 16, [](std::byte*) { throw ModelFileError("the file changed"); });
  EXPECT_THROW(failing.get(), ModelFileError);
  std::memset(other.data(), 0, 4096);
  backend.copy_within_now(other.data(), dst.data(), 4096);
  EXPECT_EQ(other.data()[0], std::byte{0x5a});
}

TEST(CpuBackend, WaitIdleReturnsOnlyWhenEveryCopyHasRun) {
  MemoryBudget budget(1 << 20);
  CpuBackend backend(budget);
  std::atomic<int> ran{0};
  std::vector<CopyTicket> tickets;
  ResidentBuffer dst = backend.allocate("a", 64);
  for (int i = 0; i < 20; ++i) {
    tickets.push_back(backend.copy_in(dst.data(), 64, [&](std::byte*) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      ++ran;
    }));
  }
  backend.wait_idle();
  EXPECT_EQ(ran.load(), 20);
  for (const CopyTicket& t : tickets) EXPECT_TRUE(t.done());
}

}  // namespace
}  // namespace morphserve
