#pragma once
// Weight-matrix × activations, the operation that dominates an LLM forward pass.
//
// Y[t][r] = sum_c W[r][c] * X[t][c] for t < n_tokens. `x` holds n_tokens rows of w.cols floats
// and `y` receives n_tokens rows of w.rows floats. Weight types: F32, F16, BF16 (accumulated in
// fp32) and Q8_0, Q4_0 (the activations are quantized to int8 blocks of 32 with an fp32 scale
// per block, then multiplied with integer dot products; see kernels/README.md).
#include <cstdint>
#include <span>

#include "core/matrix_view.h"
#include "kernels/cpu_features.h"
#include "kernels/thread_pool.h"

namespace morphserve {

// Uses the active_isa() implementation and all threads of `pool`. Throws InvalidArgument for a
// malformed view (null data, Q8_0/Q4_0 cols not a multiple of 32).
void matmul(const MatrixView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool);

// Same with an explicit instruction set (tests and benchmarks compare levels); throws
// InvalidArgument when the CPU lacks it.
void matmul_with_isa(Isa isa, const MatrixView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool);

// One of several products of the same activations: y (n_tokens rows of w.rows floats) = w·x.
struct MatmulOutput {
  MatrixView w;
  float* y = nullptr;
};

// Every outputs[i].y = outputs[i].w · x, for matrices of the same width (a layer's Q, K and V; its
// gate and up). The results are those of one matmul() per output, bit for bit, but the products
// run in one parallel region, and outputs of the same weight type share one preparation of the
// activations: decode runs a few microseconds of work per matrix, and each region ends with every
// thread waiting for the slowest. Throws InvalidArgument, before computing anything, for a
// malformed view or matrices of different widths.
void matmul_shared_input(std::span<const MatmulOutput> outputs, const float* x, int64_t n_tokens, ThreadPool& pool);
void matmul_shared_input_with_isa(Isa isa, std::span<const MatmulOutput> outputs, const float* x, int64_t n_tokens,
                                  ThreadPool& pool);

}  // namespace morphserve
