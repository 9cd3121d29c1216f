#include "kernels/matmul.h"

#include <algorithm>
#include <atomic>

#include "core/aligned_buffer.h"
#include "core/error.h"
#include "kernels/matmul_impl.h"

namespace morphserve {
namespace {

using matmul_detail::IsaMatmul;
using matmul_detail::MatmulCall;

const IsaMatmul& table_for(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return matmul_detail::scalar::matmul_table();
    case Isa::Avx2: return matmul_detail::avx2::matmul_table();
    case Isa::Avx512: return matmul_detail::avx512::matmul_table();
  }
  fail<InvalidArgument>("unknown instruction set {}", static_cast<int>(isa));
}

void validate(const MatrixView& w, const float* x, int64_t n_tokens, const float* y) {
  switch (w.type) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
      break;
    default:
      fail<InvalidArgument>("matmul: unsupported weight type {}", static_cast<uint32_t>(w.type));
  }
  if (w.rows < 0 || w.cols <= 0 || n_tokens < 0) {
    fail<InvalidArgument>("matmul: invalid shape {}x{} with {} tokens", w.rows, w.cols, n_tokens);
  }
  if (w.cols % dtype_block_elements(w.type) != 0) {
    fail<InvalidArgument>("matmul: a {} matrix needs cols divisible by {}, got {}x{}", dtype_name(w.type),
                          dtype_block_elements(w.type), w.rows, w.cols);
  }
  if (w.rows > 0 && n_tokens > 0 && (!w.data || !x || !y)) {
    fail<InvalidArgument>("matmul: null weight, input or output pointer");
  }
}

// Activation scratch of the calling thread. It only grows (geometrically), so steady-state decode
// allocates nothing; workers reach it through the call, never through their own thread_local.
std::byte* activation_scratch(size_t bytes) {
  thread_local AlignedBuffer buffer;
  if (buffer.size() < bytes) buffer = AlignedBuffer(std::max(bytes, buffer.size() * 3 / 2));
  return buffer.data();
}

// Below this many multiply-adds one thread finishes before a wake-up round trip would.
constexpr int64_t kMinParallelMatmulWork = 1 << 16;

// Row chunks per thread in a parallel compute. One contiguous range per thread leaves every other
// thread waiting at the end of the call whenever the host slows one of them (a neighbour's
// process, a page fault, an unlucky memory channel); with a few chunks each, claimed in order,
// the slowed thread simply takes fewer. Each chunk is still a contiguous stream of weight rows.
constexpr int64_t kChunksPerThread = 4;

struct Job {
  const IsaMatmul* kernels;
  const MatmulCall* call;
  int64_t items;                       // prepare items, or row grains for compute
  int64_t chunks = 0;                  // compute: row-grain chunks, claimed through `next_chunk`
  std::atomic<int64_t> next_chunk{0};  // compute: the next unclaimed chunk
};

}  // namespace

void matmul_with_isa(Isa isa, const MatrixView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  if (!cpu_supports(isa)) {
    fail<InvalidArgument>("matmul: this CPU cannot run {} kernels (it has up to {})", isa_name(isa),
                          isa_name(cpu_max_isa()));
  }
  validate(w, x, n_tokens, y);
  if (n_tokens == 0 || w.rows == 0) return;

  const IsaMatmul& kernels = table_for(isa);
  MatmulCall call;
  call.w = w;
  call.x = x;
  call.n_tokens = n_tokens;
  call.y = y;
  call.w_row_bytes = w.row_bytes();
  const size_t scratch_bytes = kernels.plan(call);
  if (scratch_bytes > 0) call.acts = activation_scratch(scratch_bytes);

  const bool parallel = pool.size() > 1 && w.rows * w.cols * n_tokens >= kMinParallelMatmulWork;
  // Each job lambda captures one pointer, so std::function stores it inline: no allocation.
  Job job{&kernels, &call, kernels.prepare_items(call)};
  if (job.items > 0) {
    if (parallel && job.items > 1) {
      pool.parallel_for(job.items, 1, [&job](int64_t begin, int64_t end) { job.kernels->prepare(*job.call, begin, end); });
    } else {
      kernels.prepare(call, 0, job.items);
    }
  }

  call.row_grain = std::max<int64_t>(call.row_grain, 1);
  job.items = (w.rows + call.row_grain - 1) / call.row_grain;
  if (!parallel || job.items == 1) {
    kernels.compute(call, 0, w.rows);
    return;
  }
  job.chunks = std::min<int64_t>(job.items, int64_t{pool.size()} * kChunksPerThread);
  pool.run([&job](int, int) {
    const int64_t grain = job.call->row_grain;
    for (int64_t c = job.next_chunk.fetch_add(1, std::memory_order_relaxed); c < job.chunks;
         c = job.next_chunk.fetch_add(1, std::memory_order_relaxed)) {
      const int64_t begin = job.items * c / job.chunks * grain;
      const int64_t end = std::min(job.call->w.rows, job.items * (c + 1) / job.chunks * grain);
      if (begin < end) job.kernels->compute(*job.call, begin, end);
    }
  });
}

void matmul(const MatrixView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  matmul_with_isa(active_isa(), w, x, n_tokens, y, pool);
}

}  // namespace morphserve
