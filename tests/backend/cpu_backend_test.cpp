// CpuBackend: resident memory only against the budget, copies that finish on their own thread and
// carry their errors, and nothing left reserved or in flight afterwards.
#include "backend/cpu_backend.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "kernels/thread_pool.h"

namespace morphserve {
namespace {

TEST(CpuBackend, AllocatesAgainstAnAccountAndGivesTheBytesBackWithTheBuffer) {
  MemoryBudget budget(1000);
  ThreadPool pool(2);
  CpuBackend backend(budget, pool);
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
  ThreadPool pool(2);
  CpuBackend backend(budget, pool);
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
  ThreadPool pool(2);
  CpuBackend backend(budget, pool);
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

TEST(CpuBackend, KernelEntryPointsComputeWhatThePlainArithmeticDoes) {
  MemoryBudget budget(1 << 20);
  ThreadPool pool(2);
  CpuBackend backend(budget, pool);
  // A 3 x 64 F16 matrix times two rows of x, against the sum written out.
  constexpr int64_t kRows = 3, kCols = 64;
  std::vector<uint16_t> w(kRows * kCols);
  std::vector<float> w_f32(w.size()), x(2 * kCols);
  for (size_t i = 0; i < w.size(); ++i) {
    w[i] = fp32_to_fp16(static_cast<float>(static_cast<int>(i % 9) - 4) / 8.0f);
    w_f32[i] = fp16_to_fp32(w[i]);
  }
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(static_cast<int>(i % 5) - 2) / 4.0f;
  const MatrixView view{DType::F16, reinterpret_cast<const std::byte*>(w.data()), kRows, kCols};
  std::vector<float> y(2 * kRows);
  backend.matmul(view, x.data(), 2, y.data());
  for (int64_t t = 0; t < 2; ++t) {
    for (int64_t r = 0; r < kRows; ++r) {
      double expected = 0;
      for (int64_t c = 0; c < kCols; ++c) expected += double(w_f32[r * kCols + c]) * x[t * kCols + c];
      EXPECT_NEAR(y[t * kRows + r], expected, 1e-3) << "token " << t << " row " << r;
    }
  }
  // The embedding lookup converts the rows the tokens name, in order.
  const int32_t tokens[] = {2, 0, 2};
  std::vector<float> rows(3 * kCols);
  backend.embed(view, tokens, 3, rows.data());
  for (int64_t t = 0; t < 3; ++t) {
    for (int64_t c = 0; c < kCols; ++c) ASSERT_EQ(rows[t * kCols + c], w_f32[tokens[t] * kCols + c]);
  }
  // The residual add and the KV row store (an F16 cache: the f16 rounding of each value).
  std::vector<float> a = {1, 2, 3}, b = {0.5f, -2, 10};
  backend.add(a.data(), b.data(), 3);
  EXPECT_EQ(a, (std::vector<float>{1.5f, 0, 13}));
  std::vector<uint16_t> stored(3);
  backend.kv_store(DType::F16, a.data(), reinterpret_cast<std::byte*>(stored.data()), 3);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(stored[i], fp32_to_fp16(a[i]));
}

}  // namespace
}  // namespace morphserve
