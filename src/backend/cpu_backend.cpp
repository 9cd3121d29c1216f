#include "backend/cpu_backend.h"

#include <cstring>

#include "core/aligned_buffer.h"
#include "kernels/activation.h"
#include "kernels/convert.h"
#include "kernels/kv_write.h"
#include "kernels/matmul.h"
#include "kernels/norm.h"
#include "kernels/thread_pool.h"

namespace morphserve {
namespace {

static_assert(AlignedBuffer::kAlignment % Backend::kAlignment == 0);

struct HostStorage final : ResidentBuffer::Storage {
  explicit HostStorage(size_t bytes) : buffer(bytes) {
    data = buffer.data();
    size = bytes;
  }
  AlignedBuffer buffer;
};

}  // namespace

ResidentBuffer CpuBackend::allocate(std::string_view account, size_t bytes) {
  budget_.reserve(account, bytes);  // OutOfBudget before anything is allocated
  std::unique_ptr<HostStorage> storage;
  try {
    storage = std::make_unique<HostStorage>(bytes);
  } catch (...) {
    budget_.release(account, bytes);
    throw;
  }
  return ResidentBuffer(std::move(storage), budget_, std::string(account));
}

CopyTicket CpuBackend::copy_in(std::byte* dst, size_t, std::function<void(std::byte* host)> fill) {
  // Host memory is resident memory here: the fill writes straight into the destination.
  return CopyTicket(worker_.submit([dst, fill = std::move(fill)] { fill(dst); }));
}

CopyTicket CpuBackend::copy_within(std::byte* dst, const std::byte* src, size_t bytes) {
  return CopyTicket(worker_.submit([dst, src, bytes] { std::memcpy(dst, src, bytes); }));
}

void CpuBackend::copy_within_now(std::byte* dst, const std::byte* src, size_t bytes) { std::memcpy(dst, src, bytes); }

void CpuBackend::wait_idle() {
  // The worker runs jobs in order: once an empty one has run, everything before it has too.
  worker_.submit([] {}).wait();
}

void CpuBackend::matmul(const MatrixView& w, const float* x, int64_t n_tokens, float* y) {
  morphserve::matmul(w, x, n_tokens, y, pool_);
}

void CpuBackend::matmul_shared_input(std::span<const MatmulOutput> outputs, const float* x, int64_t n_tokens) {
  morphserve::matmul_shared_input(outputs, x, n_tokens, pool_);
}

void CpuBackend::embed(const MatrixView& table, const int32_t* tokens, int64_t n_tokens, float* out) {
  for (int64_t t = 0; t < n_tokens; ++t) dequantize_row(table.type, table.row(tokens[t]), out + t * table.cols, table.cols);
}

void CpuBackend::rms_norm(const float* x, const float* weight, float* out, int64_t n_rows, int64_t n, float eps) {
  morphserve::rms_norm(x, weight, out, n_rows, n, eps);
}

void CpuBackend::rope(float* x, int64_t n_tokens, int n_heads, const int32_t* positions, const RopeParams& params) {
  morphserve::rope(x, n_tokens, n_heads, positions, params);
}

void CpuBackend::silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  morphserve::silu_mul(gate, up, out, n);
}

void CpuBackend::add(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void CpuBackend::kv_store(DType type, const float* row, std::byte* dst, int64_t n) { kv_store_row(type, row, dst, n); }

void CpuBackend::attention(const float* q, int64_t n_q, int64_t first_pos, int n_heads, const KvBlocks& kv, float scale,
                           float* out) {
  morphserve::attention(q, n_q, first_pos, n_heads, kv, scale, out, pool_);
}

}  // namespace morphserve
