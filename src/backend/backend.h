#pragma once
// The backend seam (DESIGN.md §2): what holds resident memory, fills it, and computes on it.
// Everything resident is allocated through a Backend against an account of the memory budget, in
// one call, so no byte escapes the ledger; copies into resident memory are started here and finish
// on their own, and the engine thread polls their tickets at iteration boundaries; the forward
// pass calls the kernel entry points below, never kernels/ itself. CpuBackend (cpu_backend.h) is
// the one there is; README.md says what a CUDA backend would implement behind the same calls.
#include <cstddef>
#include <functional>
#include <future>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core/dtype.h"
#include "core/matrix_view.h"
#include "core/memory_budget.h"
#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "kernels/rope.h"

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
  // The ledger the bytes are counted in (null for an empty buffer).
  const MemoryBudget* ledger() const { return budget_; }

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
  // Every allocate() result, and every lent range the KV pool carves, starts at a multiple of this.
  static constexpr size_t kAlignment = 64;

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

  // Kernel entry points, on resident memory. Each weight format's kernel is chosen from the view's
  // type, so a layer runs at whatever precision its weights are in right now. Called from the
  // engine thread, one at a time; each returns when its result can be read by the next.
  // y[t] = W·x[t] for n_tokens rows of x (w.cols floats each) into y (w.rows floats each).
  virtual void matmul(const MatrixView& w, const float* x, int64_t n_tokens, float* y) = 0;
  // Every outputs[i].y = outputs[i].w · x for matrices of one width (a layer's Q, K, V; gate, up):
  // the same results as one matmul() each, computed together (kernels/matmul.h).
  virtual void matmul_shared_input(std::span<const MatmulOutput> outputs, const float* x, int64_t n_tokens) = 0;
  // out[t] = table row tokens[t], converted to f32 from the table's type.
  virtual void embed(const MatrixView& table, const int32_t* tokens, int64_t n_tokens, float* out) = 0;
  virtual void rms_norm(const float* x, const float* weight, float* out, int64_t n_rows, int64_t n, float eps) = 0;
  virtual void rope(float* x, int64_t n_tokens, int n_heads, const int32_t* positions, const RopeParams& params) = 0;
  // out = silu(gate) * up, elementwise (SwiGLU).
  virtual void silu_mul(const float* gate, const float* up, float* out, int64_t n) = 0;
  // x += y, elementwise (the residual stream, biases).
  virtual void add(float* x, const float* y, int64_t n) = 0;
  // One token's K or V row (n floats) into a KV block slot, in the cache's type.
  virtual void kv_store(DType type, const float* row, std::byte* dst, int64_t n) = 0;
  // Causal attention of n_q query rows at positions first_pos.. over paged K/V blocks.
  virtual void attention(const float* q, int64_t n_q, int64_t first_pos, int n_heads, const KvBlocks& kv, float scale,
                         float* out) = 0;

 protected:
  MemoryBudget& budget_;
};

}  // namespace morphserve
