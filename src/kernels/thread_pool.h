#pragma once
// A fixed pool of worker threads that every kernel shares. The calling thread takes part as
// thread 0, so a pool of N threads uses N cores. Workers spin briefly before sleeping: decode
// issues hundreds of short parallel regions per token and a futex wake-up per region would cost
// more than the work.
#include <cstdint>
#include <functional>

namespace morphserve {

class ThreadPool {
 public:
  // n_threads <= 0 means one thread per available core.
  explicit ThreadPool(int n_threads = 0);
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool();

  int size() const;

  // Runs fn(thread_index, n_threads) once on each thread and returns when all have finished.
  // Not re-entrant: fn must not call run() on the same pool. One caller at a time.
  void run(const std::function<void(int thread_index, int n_threads)>& fn);

  // Splits [0, n) into contiguous chunks of at least `grain` items and hands them out to the
  // threads; returns when all are done.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t begin, int64_t end)>& fn);

 private:
  struct State;
  State* state_;
};

}  // namespace morphserve
