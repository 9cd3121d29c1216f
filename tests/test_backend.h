#pragma once
// Resident memory for tests that keep no budget: one unmetered CPU backend for the whole test
// binary. Function-static, so it is built before, and outlives, every model a test keeps (static
// ones included). Tests that run kernels on a pool of their own build an UnmeteredCpuBackend over
// it instead.
#include "backend/cpu_backend.h"
#include "kernels/thread_pool.h"

namespace morphserve {

inline UnmeteredCpuBackend& test_backend() {
  static ThreadPool pool(2);
  static UnmeteredCpuBackend backend(pool);
  return backend;
}

}  // namespace morphserve
