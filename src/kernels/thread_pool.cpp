#include "kernels/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MORPHSERVE_CPU_RELAX() _mm_pause()
#else
#define MORPHSERVE_CPU_RELAX() std::this_thread::yield()
#endif

namespace morphserve {

namespace {
// How long an idle worker spins before it sleeps. Decode issues one parallel region per matmul
// with a few microseconds of serial work (norms, rope) between them; waking a sleeping thread
// through the kernel costs tens of microseconds, so workers spin through such gaps. Longer idle
// periods (between requests) end in a condition-variable sleep so idle engines burn no CPU.
constexpr auto kSpinDuration = std::chrono::microseconds(100);
}  // namespace

struct ThreadPool::State {
  int n_threads = 1;
  std::vector<std::thread> workers;

  // The job of the current generation. Written by the caller before `next_index` and `generation`
  // are published; read only by a thread that claimed an index of that generation.
  const std::function<void(int, int)>* job = nullptr;
  alignas(64) std::atomic<uint64_t> generation{0};
  // Indices 1..n-1 are claimed, not assigned: whichever thread gets there first runs the next one.
  // On a busy host a worker may not be scheduled for milliseconds; the caller then runs its share
  // instead of waiting for it. Stored with release after `job`, so a claim also publishes the job.
  alignas(64) std::atomic<int> next_index{0};
  alignas(64) std::atomic<int> pending{0};  // claimed-or-unclaimed indices not yet finished
  alignas(64) std::atomic<int> sleepers{0};
  std::atomic<bool> stop{false};
  std::mutex mutex;
  std::condition_variable wake;

  // The first exception a thread threw during the current run(); rethrown to the caller.
  std::mutex error_mutex;
  std::exception_ptr error;

  void record_error(std::exception_ptr e) {
    std::lock_guard lock(error_mutex);
    if (!error) error = std::move(e);
  }

  void run_job(int index) {
    try {
      (*job)(index, n_threads);
    } catch (...) {
      record_error(std::current_exception());
    }
  }

  // Waits until `generation` moves past `seen`; returns false when the pool is shutting down.
  bool wait_for_work(uint64_t seen) {
    const auto deadline = std::chrono::steady_clock::now() + kSpinDuration;
    for (int spins = 0;; ++spins) {
      if (generation.load(std::memory_order_acquire) != seen) return true;
      if (stop.load(std::memory_order_relaxed)) return false;
      MORPHSERVE_CPU_RELAX();
      // Reading the clock costs ~20 ns; every 64 pauses keeps it negligible.
      if ((spins & 63) == 63 && std::chrono::steady_clock::now() > deadline) break;
    }
    // Dekker-style handshake with run(): we publish `sleepers` before re-reading `generation`,
    // run() publishes `generation` before reading `sleepers` (both seq_cst), so at least one of
    // us sees the other and no wake-up is lost.
    sleepers.fetch_add(1, std::memory_order_seq_cst);
    std::unique_lock lock(mutex);
    wake.wait(lock, [&] {
      return generation.load(std::memory_order_seq_cst) != seen || stop.load(std::memory_order_seq_cst);
    });
    sleepers.fetch_sub(1, std::memory_order_relaxed);
    return generation.load(std::memory_order_acquire) != seen;
  }

  // Runs unclaimed indices of the current generation until none are left.
  void run_claimed() {
    for (;;) {
      const int index = next_index.fetch_add(1, std::memory_order_acq_rel);
      if (index >= n_threads) return;
      run_job(index);
      pending.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  void worker_loop() {
    uint64_t seen = 0;
    while (wait_for_work(seen)) {
      seen = generation.load(std::memory_order_acquire);
      run_claimed();
    }
  }
};

ThreadPool::ThreadPool(int n_threads) : state_(new State) {
  if (n_threads <= 0) n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  state_->n_threads = n_threads;
  state_->workers.reserve(static_cast<size_t>(n_threads - 1));
  for (int i = 1; i < n_threads; ++i) {
    state_->workers.emplace_back([s = state_] { s->worker_loop(); });
  }
}

ThreadPool::~ThreadPool() {
  state_->stop.store(true, std::memory_order_seq_cst);
  {
    std::lock_guard lock(state_->mutex);
  }
  state_->wake.notify_all();
  for (auto& worker : state_->workers) worker.join();
  delete state_;
}

int ThreadPool::size() const { return state_->n_threads; }

void ThreadPool::run(const std::function<void(int thread_index, int n_threads)>& fn) {
  State& s = *state_;
  if (s.n_threads == 1) {
    fn(0, 1);
    return;
  }
  s.job = &fn;
  s.error = nullptr;
  s.pending.store(s.n_threads - 1, std::memory_order_relaxed);
  s.next_index.store(1, std::memory_order_release);
  s.generation.fetch_add(1, std::memory_order_seq_cst);
  if (s.sleepers.load(std::memory_order_seq_cst) > 0) {
    // Taking the mutex orders this notify after any sleeper's predicate check.
    { std::lock_guard lock(s.mutex); }
    s.wake.notify_all();
  }
  s.run_job(0);
  s.run_claimed();
  // Every index is claimed; the others usually finish within microseconds, so spin.
  for (int spins = 0; s.pending.load(std::memory_order_acquire) != 0; ++spins) {
    MORPHSERVE_CPU_RELAX();
    if ((spins & 1023) == 1023) std::this_thread::yield();  // an oversubscribed host preempted a worker
  }
  s.job = nullptr;
  if (s.error) {
    std::exception_ptr error = std::exchange(s.error, nullptr);
    std::rethrow_exception(error);
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int64_t begin, int64_t end)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t chunks = std::min<int64_t>(state_->n_threads, (n + grain - 1) / grain);
  if (chunks <= 1) {
    fn(0, n);
    return;
  }
  // Contiguous, near-equal chunks: kernels stream memory, so one range per thread keeps each
  // thread's reads sequential and the split deterministic. Threads past `chunks` idle.
  // The lambda captures one pointer so std::function keeps it inline (no allocation per call).
  struct Split {
    const std::function<void(int64_t, int64_t)>* fn;
    int64_t n;
    int64_t chunks;
  } split{&fn, n, chunks};
  const std::function<void(int, int)> body = [&split](int index, int) {
    if (index >= split.chunks) return;
    const int64_t begin = split.n * index / split.chunks;
    const int64_t end = split.n * (index + 1) / split.chunks;
    if (begin < end) (*split.fn)(begin, end);
  };
  run(body);
}

}  // namespace morphserve
