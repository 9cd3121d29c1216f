#include "kernels/matmul.h"

#include <algorithm>
#include <atomic>
#include <span>
#include <vector>

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

// One output's product in a call.
struct Product {
  MatmulCall call;
  size_t act_bytes = 0;       // its plan's activation layout
  size_t act_offset = 0;      // where that layout starts in the call's scratch
  bool prepares = false;      // false: it reads an earlier product's identical layout
  int64_t prepare_first = 0;  // its first prepare item in the call's order (when it prepares)
  int64_t prepare_items = 0;
  int64_t grains = 0;         // row grains
  int64_t first_chunk = 0;    // its first compute chunk in the call's order
  int64_t chunks = 0;
};

struct Job {
  const IsaMatmul* kernels = nullptr;
  std::span<Product> products;
  int64_t prepare_items = 0;
  int64_t chunks = 0;
  std::atomic<int64_t> next_chunk{0};  // the next unclaimed compute chunk
};

// The products of the calling thread's last call; it only grows, so steady-state decode allocates
// nothing (workers reach it through the job).
std::vector<Product>& product_list(size_t n) {
  thread_local std::vector<Product> products;
  products.clear();
  products.resize(n);
  return products;
}

// Two products share prepared activations when everything that prepare() reads matches: the
// input (shared), the token count and width (checked equal for the call), the weight type and the
// plan's variant and layout size.
bool same_preparation(const MatmulCall& a, size_t a_bytes, const MatmulCall& b, size_t b_bytes) {
  return a.w.type == b.w.type && a.variant == b.variant && a_bytes == b_bytes;
}

void prepare_range(const Job& job, int64_t begin, int64_t end) {
  for (const Product& p : job.products) {
    if (!p.prepares) continue;
    const int64_t lo = std::max(begin, p.prepare_first) - p.prepare_first;
    const int64_t hi = std::min(end, p.prepare_first + p.prepare_items) - p.prepare_first;
    if (lo < hi) job.kernels->prepare(p.call, lo, hi);
  }
}

void compute_chunk(const Job& job, int64_t chunk) {
  for (const Product& p : job.products) {
    if (chunk >= p.first_chunk + p.chunks) continue;
    const int64_t c = chunk - p.first_chunk;
    const int64_t grain = p.call.row_grain;
    const int64_t begin = p.grains * c / p.chunks * grain;
    const int64_t end = std::min(p.call.w.rows, p.grains * (c + 1) / p.chunks * grain);
    if (begin < end) job.kernels->compute(p.call, begin, end);
    return;
  }
}

}  // namespace

void matmul_shared_input_with_isa(Isa isa, std::span<const MatmulOutput> outputs, const float* x, int64_t n_tokens,
                                  ThreadPool& pool) {
  if (!cpu_supports(isa)) {
    fail<InvalidArgument>("matmul: this CPU cannot run {} kernels (it has up to {})", isa_name(isa),
                          isa_name(cpu_max_isa()));
  }
  for (const MatmulOutput& out : outputs) {
    validate(out.w, x, n_tokens, out.y);
    if (out.w.cols != outputs.front().w.cols) {
      fail<InvalidArgument>("matmul: matrices sharing an input need one width, got {} and {} columns",
                            outputs.front().w.cols, out.w.cols);
    }
  }
  if (n_tokens == 0) return;
  const IsaMatmul& kernels = table_for(isa);

  size_t n_products = 0;
  for (const MatmulOutput& out : outputs) n_products += out.w.rows > 0 ? 1 : 0;
  if (n_products == 0) return;
  std::vector<Product>& products = product_list(n_products);
  size_t scratch_bytes = 0;
  int64_t work = 0;
  size_t n = 0;
  for (const MatmulOutput& out : outputs) {
    if (out.w.rows == 0) continue;
    Product& p = products[n++];
    p.call.w = out.w;
    p.call.x = x;
    p.call.n_tokens = n_tokens;
    p.call.y = out.y;
    p.call.w_row_bytes = out.w.row_bytes();
    p.act_bytes = kernels.plan(p.call);
    p.call.row_grain = std::max<int64_t>(p.call.row_grain, 1);
    p.grains = (out.w.rows + p.call.row_grain - 1) / p.call.row_grain;
    work += out.w.rows * out.w.cols * n_tokens;
    p.prepares = true;
    for (size_t e = 0; e + 1 < n; ++e) {
      if (products[e].prepares && same_preparation(products[e].call, products[e].act_bytes, p.call, p.act_bytes)) {
        p.prepares = false;
        p.act_offset = products[e].act_offset;
        break;
      }
    }
    if (p.prepares) {
      p.act_offset = scratch_bytes;
      constexpr size_t kAlign = AlignedBuffer::kAlignment;  // every layout starts where a vector load may
      scratch_bytes += (p.act_bytes + kAlign - 1) / kAlign * kAlign;
    }
  }
  std::byte* scratch = scratch_bytes > 0 ? activation_scratch(scratch_bytes) : nullptr;

  // Each job lambda captures one pointer, so std::function stores it inline: no allocation.
  Job job;
  job.kernels = &kernels;
  job.products = std::span<Product>(products);
  for (Product& p : products) {
    if (p.act_bytes > 0) p.call.acts = scratch + p.act_offset;
    if (!p.prepares) continue;
    p.prepare_first = job.prepare_items;
    p.prepare_items = kernels.prepare_items(p.call);
    job.prepare_items += p.prepare_items;
  }

  const bool parallel = pool.size() > 1 && work >= kMinParallelMatmulWork;
  // At one token a preparation is one row, a microsecond: less than handing it to another thread.
  if (parallel && n_tokens > 1 && job.prepare_items > 1) {
    pool.parallel_for(job.prepare_items, 1, [&job](int64_t begin, int64_t end) { prepare_range(job, begin, end); });
  } else if (job.prepare_items > 0) {
    prepare_range(job, 0, job.prepare_items);
  }

  // Chunks in proportion to each product's share of the work, at least one each.
  const int64_t target = parallel ? int64_t{pool.size()} * kChunksPerThread : 1;
  for (Product& p : products) {
    const int64_t share = (target * p.call.w.rows * p.call.w.cols * n_tokens + work / 2) / work;
    p.first_chunk = job.chunks;
    p.chunks = std::clamp<int64_t>(share, 1, p.grains);
    job.chunks += p.chunks;
  }
  if (!parallel || job.chunks == 1) {
    for (const Product& p : products) kernels.compute(p.call, 0, p.call.w.rows);
    return;
  }
  pool.run([&job](int, int) {
    for (int64_t c = job.next_chunk.fetch_add(1, std::memory_order_relaxed); c < job.chunks;
         c = job.next_chunk.fetch_add(1, std::memory_order_relaxed)) {
      compute_chunk(job, c);
    }
  });
}

void matmul_with_isa(Isa isa, const MatrixView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  const MatmulOutput out{w, y};
  matmul_shared_input_with_isa(isa, std::span<const MatmulOutput>(&out, 1), x, n_tokens, pool);
}

void matmul_shared_input(std::span<const MatmulOutput> outputs, const float* x, int64_t n_tokens, ThreadPool& pool) {
  matmul_shared_input_with_isa(active_isa(), outputs, x, n_tokens, pool);
}

void matmul(const MatrixView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  matmul_with_isa(active_isa(), w, x, n_tokens, y, pool);
}

}  // namespace morphserve
