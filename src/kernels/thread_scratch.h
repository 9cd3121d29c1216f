#pragma once
// A growing per-thread scratch buffer for the GEMM drivers (the converted or unpacked weight chunk
// and the transposed output block of each pool thread). A template over the ISA traits S, so that
// each level's copy is its own instantiation compiled with its own flags (no ODR hazard, see
// kernels/README.md); the GEMMs of one level share one buffer per thread, as one thread runs one
// matmul at a time.
#include <cstddef>

#include "core/aligned_buffer.h"

namespace morphserve::matmul_detail {

template <class S>
std::byte* thread_scratch(size_t bytes) {
  thread_local AlignedBuffer buffer;
  if (buffer.size() < bytes) buffer = AlignedBuffer(bytes);
  return buffer.data();
}

}  // namespace morphserve::matmul_detail
