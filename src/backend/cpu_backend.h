#pragma once
// The CPU backend: resident memory is 64-byte aligned host memory (AlignedBuffer), and copies run
// on one background thread (CopyWorker), overlapped with the forward passes the kernels/ run.
#include "backend/backend.h"
#include "backend/copy_worker.h"

namespace morphserve {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(MemoryBudget& budget) : Backend(budget) {}
  // Lets the copies in flight finish first: they write into memory their owners are about to free.
  ~CpuBackend() override { wait_idle(); }

  std::string_view name() const override { return "cpu"; }
  ResidentBuffer allocate(std::string_view account, size_t bytes) override;
  CopyTicket copy_in(std::byte* dst, size_t bytes, std::function<void(std::byte* host)> fill) override;
  CopyTicket copy_within(std::byte* dst, const std::byte* src, size_t bytes) override;
  void copy_within_now(std::byte* dst, const std::byte* src, size_t bytes) override;
  void wait_idle() override;

 private:
  CopyWorker worker_;
};

}  // namespace morphserve
