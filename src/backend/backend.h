#pragma once
// The backend seam (DESIGN.md §2): what holds resident memory and fills it. Everything resident
// is allocated through a Backend against an account of the memory budget, in one call, so no byte
// escapes the ledger; copies into resident memory are started here and finish on their own, and
// the engine thread polls their tickets at iteration boundaries. CpuBackend (cpu_backend.h) is
// the one there is; README.md says what a CUDA backend would implement behind the same calls.
#include <cstddef>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <string_view>

#include "core/memory_budget.h"

namespace morphserve {

class Backend;

// Resident memory a backend allocated against one budget account. Destroying it frees the memory
// and releases the bytes from the account. Move-only.
class ResidentBuffer {
 public:
  // What a backend keeps per allocation (an AlignedBuffer on the CPU, a device pointer elsewhere).
  struct Storage {
    virtual ~Storage() = default;
    std::byte* data = nullptr;
    size_t size = 0;
  };

  ResidentBuffer() = default;
  ResidentBuffer(std::unique_ptr<Storage> storage, MemoryBudget& budget, std::string account);
  ResidentBuffer(ResidentBuffer&& other) noexcept;
  ResidentBuffer& operator=(ResidentBuffer&& other) noexcept;
  ResidentBuffer(const ResidentBuffer&) = delete;
  ResidentBuffer& operator=(const ResidentBuffer&) = delete;
  ~ResidentBuffer();

  std::byte* data() const { return storage_ ? storage_->data : nullptr; }
  size_t size() const { return storage_ ? storage_->size : 0; }
  const std::string& account() const { return account_; }

 private:
  void reset() noexcept;

  std::unique_ptr<Storage> storage_;
  MemoryBudget* budget_ = nullptr;
  std::string account_;
};

// A copy in flight. The engine thread polls done() at iteration boundaries and then get()s it,
// which rethrows the copy's error (a source file that changed, a device fault).
class CopyTicket {
 public:
  CopyTicket() = default;
  explicit CopyTicket(std::future<void> done) : done_(std::move(done)) {}

  bool valid() const { return done_.valid(); }
  // Never blocks.
  bool done() const { return done_.valid() && done_.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }
  void wait() const { done_.wait(); }
  // Waits if need be, rethrows the copy's exception; the ticket is then invalid.
  void get() { done_.get(); }

 private:
  std::future<void> done_;
};

class Backend {
 public:
  explicit Backend(MemoryBudget& budget) : budget_(budget) {}
  virtual ~Backend() = default;
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  virtual std::string_view name() const = 0;

  // Reserves `bytes` in `account` and allocates them. OutOfBudget, with nothing allocated or
  // reserved, when they do not fit.
  virtual ResidentBuffer allocate(std::string_view account, size_t bytes) = 0;
  // Starts filling `bytes` of resident memory at `dst`: `fill` writes them into host memory it is
  // handed (the destination itself on the CPU; pinned staging that is then copied in, on an
  // accelerator). The ticket completes, carrying fill's exception, once the bytes are resident.
  virtual CopyTicket copy_in(std::byte* dst, size_t bytes, std::function<void(std::byte* host)> fill) = 0;
  // Starts a copy between two resident ranges (they must not overlap).
  virtual CopyTicket copy_within(std::byte* dst, const std::byte* src, size_t bytes) = 0;
  // The same, done before returning: for rare recovery paths on the engine thread.
  virtual void copy_within_now(std::byte* dst, const std::byte* src, size_t bytes) = 0;
  // Blocks until no copy is in flight (shutdown, before resident memory is freed).
  virtual void wait_idle() = 0;

  // Resident bytes changing role in place (a layer region's tail lent to the KV pool and back):
  // moved from one budget account to another, nothing allocated or freed.
  void reassign(std::string_view from, std::string_view to, size_t bytes) { budget_.transfer(from, to, bytes); }
  // The ledger, for reading (status, invariants).
  const MemoryBudget& budget() const { return budget_; }

 protected:
  MemoryBudget& budget_;
};

}  // namespace morphserve
