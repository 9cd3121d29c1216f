#include "memory_bandwidth.h"

// GCC 12's AVX-512 intrinsics initialise their "undefined" operands from themselves, which
// -Wmaybe-uninitialized flags; the values are never read.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>

#include "backend/cpu_backend.h"
#include "core/aligned_buffer.h"
#include "kernels/cpu_features.h"
#include "kernels/thread_pool.h"

namespace morphserve::bench {
namespace {

// Sums the buffer as 64-bit integers with several independent accumulators so the loop is
// bound by loads, not by the add chain; the sum is returned so the compiler keeps the reads.
__attribute__((target("avx512f"))) uint64_t read_avx512(const std::byte* p, size_t bytes) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 256 <= bytes; i += 256) {
    a0 = _mm512_add_epi64(a0, _mm512_load_si512(p + i));
    a1 = _mm512_add_epi64(a1, _mm512_load_si512(p + i + 64));
    a2 = _mm512_add_epi64(a2, _mm512_load_si512(p + i + 128));
    a3 = _mm512_add_epi64(a3, _mm512_load_si512(p + i + 192));
  }
  return static_cast<uint64_t>(
      _mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3))));
}

__attribute__((target("avx2"))) uint64_t read_avx2(const std::byte* p, size_t bytes) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 128 <= bytes; i += 128) {
    a0 = _mm256_add_epi64(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_add_epi64(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_add_epi64(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  const __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), s);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

uint64_t read_scalar(const std::byte* p, size_t bytes) {
  uint64_t sum = 0;
  for (size_t i = 0; i + 8 <= bytes; i += 8) {
    uint64_t v;
    std::memcpy(&v, p + i, 8);
    sum += v;
  }
  return sum;
}

}  // namespace

double measure_read_bandwidth(ThreadPool& pool, size_t buffer_bytes) {
  buffer_bytes = std::max<size_t>(buffer_bytes / 4096 * 4096, 4096);
  AlignedBuffer buffer(buffer_bytes);  // zero-filled, so every page is resident before timing
  const std::byte* data = buffer.data();
  const Isa isa = cpu_max_isa();
  std::atomic<uint64_t> sink{0};  // keeps the reads alive
  double best = 0.0;
  constexpr int kReps = 5;
  for (int rep = 0; rep < kReps; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    pool.run([&](int index, int n) {
      // Page-aligned contiguous slices: each thread streams its own part, as matmul rows do.
      const size_t pages = buffer_bytes / 4096;
      const size_t begin = pages * static_cast<size_t>(index) / static_cast<size_t>(n) * 4096;
      const size_t end = pages * static_cast<size_t>(index + 1) / static_cast<size_t>(n) * 4096;
      uint64_t s;
      if (isa == Isa::Avx512) {
        s = read_avx512(data + begin, end - begin);
      } else if (isa == Isa::Avx2) {
        s = read_avx2(data + begin, end - begin);
      } else {
        s = read_scalar(data + begin, end - begin);
      }
      sink.fetch_add(s, std::memory_order_relaxed);
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, static_cast<double>(buffer_bytes) / seconds);
  }
  return best;
}

ThreadPool& shared_pool() {
  static ThreadPool pool(0);
  return pool;
}

Backend& shared_backend() {
  static UnmeteredCpuBackend backend(shared_pool());
  return backend;
}

double bandwidth() {
  static const double measured = measure_read_bandwidth(shared_pool());
  return measured;
}

}  // namespace morphserve::bench
