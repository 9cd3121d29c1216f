#include "backend/cpu_backend.h"

#include <cstring>

#include "core/aligned_buffer.h"

namespace morphserve {
namespace {

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

}  // namespace morphserve
