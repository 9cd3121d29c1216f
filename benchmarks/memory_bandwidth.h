#pragma once
// Measures this machine's DRAM read bandwidth now, so every benchmark can report its speed as a
// fraction of the roofline measured in the same run (absolute numbers are noisy on shared hosts).
#include <cstddef>

namespace morphserve {
class Backend;
class ThreadPool;
namespace bench {
// Best-of-several read bandwidth in bytes/s over a buffer much larger than the caches, read by
// every thread of the pool.
double measure_read_bandwidth(ThreadPool& pool, size_t buffer_bytes = size_t{1} << 30);
// One pool with a thread per core, shared by every benchmark of the program.
ThreadPool& shared_pool();
// An unmetered CPU backend over shared_pool(), for the models, KV pools and runners benchmarked.
Backend& shared_backend();
// measure_read_bandwidth(shared_pool()), measured once per program run.
double bandwidth();
}  // namespace bench
}  // namespace morphserve
