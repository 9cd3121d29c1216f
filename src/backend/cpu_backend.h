#pragma once
// The CPU backend: resident memory is 64-byte aligned host memory (AlignedBuffer), copies run on
// one background thread (CopyWorker), overlapped with the forward passes, and the kernels are
// kernels/ for this machine's ISA, spread over a thread pool.
#include <limits>

#include "backend/backend.h"
#include "backend/copy_worker.h"

namespace morphserve {

class ThreadPool;

class CpuBackend : public Backend {
 public:
  // The budget and the pool must outlive the backend.
  CpuBackend(MemoryBudget& budget, ThreadPool& pool) : Backend(budget), pool_(pool) {}
  // Lets the copies in flight finish first: they write into memory their owners are about to free.
  ~CpuBackend() override { wait_idle(); }

  std::string_view name() const override { return "cpu"; }
  ResidentBuffer allocate(std::string_view account, size_t bytes) override;
  CopyTicket copy_in(std::byte* dst, size_t bytes, std::function<void(std::byte* host)> fill) override;
  CopyTicket copy_within(std::byte* dst, const std::byte* src, size_t bytes) override;
  void copy_within_now(std::byte* dst, const std::byte* src, size_t bytes) override;
  void wait_idle() override;

  void matmul(const MatrixView& w, const float* x, int64_t n_tokens, float* y) override;
  void matmul_shared_input(std::span<const MatmulOutput> outputs, const float* x, int64_t n_tokens) override;
  void embed(const MatrixView& table, const int32_t* tokens, int64_t n_tokens, float* out) override;
  void rms_norm(const float* x, const float* weight, float* out, int64_t n_rows, int64_t n, float eps) override;
  void rope(float* x, int64_t n_tokens, int n_heads, const int32_t* positions, const RopeParams& params) override;
  void silu_mul(const float* gate, const float* up, float* out, int64_t n) override;
  void add(float* x, const float* y, int64_t n) override;
  void kv_store(DType type, const float* row, std::byte* dst, int64_t n) override;
  void attention(const float* q, int64_t n_q, int64_t first_pos, int n_heads, const KvBlocks& kv, float scale,
                 float* out) override;

 private:
  ThreadPool& pool_;
  CopyWorker worker_;
};

namespace detail {
struct UnlimitedBudget {
  MemoryBudget unlimited_budget{std::numeric_limits<size_t>::max()};
};
}  // namespace detail

// A CPU backend with a ledger of its own and no limit, for what holds a model with no budget to
// keep: importance profiling, the experiment's quality pass, the f16 scratch a quantized dummy is
// converted from, the tests and the benchmarks. Its ledger still counts every resident byte
// (budget().used()), it just never refuses one.
class UnmeteredCpuBackend final : private detail::UnlimitedBudget, public CpuBackend {
 public:
  explicit UnmeteredCpuBackend(ThreadPool& pool) : CpuBackend(unlimited_budget, pool) {}
};

}  // namespace morphserve
