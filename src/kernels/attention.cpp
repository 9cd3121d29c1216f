#include "kernels/attention.h"

#include <algorithm>

#include "core/error.h"
#include "kernels/elementwise_impl.h"
#include "kernels/thread_pool.h"

namespace morphserve {
namespace {

using kernel_impl::AttentionArgs;
using kernel_impl::kMaxHeadsPerUnit;

// Below this many multiply-adds (keys x head_dim summed over all units) the wake-up of the pool
// costs more than it saves: tiny models and the first tokens of a sequence run on the caller.
constexpr int64_t kMinParallelAttentionWork = 1 << 15;

void validate(const float* q, int64_t n_q, int64_t first_pos, int n_heads, const KvBlocks& kv, const float* out) {
  if (kv.type != DType::F32 && kv.type != DType::F16) {
    fail<InvalidArgument>("attention reads an f32 or f16 KV cache, not {}", dtype_name(kv.type));
  }
  if (kv.head_dim <= 0 || kv.head_dim > kMaxAttentionHeadDim) {
    fail<InvalidArgument>("attention supports head_dim 1..{} (got {})", kMaxAttentionHeadDim, kv.head_dim);
  }
  if (kv.n_kv_heads <= 0 || n_heads <= 0 || n_heads % kv.n_kv_heads != 0) {
    fail<InvalidArgument>("attention needs n_heads ({}) to be a positive multiple of n_kv_heads ({})", n_heads,
                          kv.n_kv_heads);
  }
  if (kv.block_size <= 0) fail<InvalidArgument>("attention needs block_size > 0 (got {})", kv.block_size);
  if (n_q < 0 || first_pos < 0) {
    fail<InvalidArgument>("attention needs n_q >= 0 and first_pos >= 0 (got {}, {})", n_q, first_pos);
  }
  if (n_q > 0 && (!q || !out || !kv.k_blocks || !kv.v_blocks)) {
    fail<InvalidArgument>("attention was given a null q, out or block table");
  }
}

void run_units(Isa isa, const AttentionArgs& args, int64_t begin, int64_t end) {
  kernel_impl::isa_kernels(isa).attention_units(args, begin, end);
}

// Work of the units before unit u: query i costs first_pos + i + 1 keys per unit, plus one key's
// worth of fixed cost.
struct WorkSplit {
  int64_t units_per_query;
  int64_t first_pos;
  int64_t cost(int64_t i) const { return first_pos + i + 2; }
  int64_t before(int64_t u) const {
    const int64_t i = u / units_per_query;
    // sum_{k<i} cost(k) * units_per_query + (u - i * units_per_query) * cost(i)
    return units_per_query * (i * (first_pos + 2) + i * (i - 1) / 2) + (u - i * units_per_query) * cost(i);
  }
};

// First unit whose preceding work reaches `target`: the boundary between two threads' runs.
int64_t unit_at(const WorkSplit& w, int64_t n_units, int64_t target) {
  int64_t lo = 0, hi = n_units;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (w.before(mid) < target) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

// Largest divisor of the GQA group that is <= limit.
int group_divisor(int group, int limit) {
  for (int d = std::min(group, limit); d > 1; --d) {
    if (group % d == 0) return d;
  }
  return 1;
}

// As many heads per unit as the group allows (each unit reads its K/V once), but no fewer units
// than threads: a decode step of a GQA model has only n_kv_heads groups per query.
int choose_heads_per_unit(int64_t n_q, int n_heads, int n_kv_heads, int n_threads) {
  const int group = n_heads / n_kv_heads;
  int heads = group_divisor(group, kMaxHeadsPerUnit);
  while (heads > 1 && n_q * (n_heads / heads) < n_threads) heads = group_divisor(group, heads - 1);
  return heads;
}

struct ParallelCall {
  Isa isa;
  const AttentionArgs* args;
  WorkSplit split;
  int64_t n_units;
  int64_t total;
};

}  // namespace

void attention_with_isa(Isa isa, const float* q, int64_t n_q, int64_t first_pos, int n_heads, const KvBlocks& kv,
                        float scale, float* out, ThreadPool& pool) {
  kernel_impl::require_isa(isa, "attention");
  validate(q, n_q, first_pos, n_heads, kv, out);
  if (n_q == 0) return;
  AttentionArgs args{q, n_q, first_pos, n_heads, kv, scale, out};
  const bool parallel = pool.size() > 1 && n_q * n_heads * (first_pos + n_q) * kv.head_dim >= kMinParallelAttentionWork;
  args.heads_per_unit = choose_heads_per_unit(n_q, n_heads, kv.n_kv_heads, parallel ? pool.size() : 1);
  const int units_per_query = n_heads / args.heads_per_unit;
  const int64_t n_units = n_q * units_per_query;
  const WorkSplit split{units_per_query, first_pos};
  const int64_t total = split.before(n_units);
  if (!parallel) {
    run_units(isa, args, 0, n_units);
    return;
  }
  // Contiguous runs of units with equal numbers of keys: in a prefill chunk the later queries see
  // more keys, so equal unit counts would leave the first threads idle.
  const ParallelCall call{isa, &args, split, n_units, total};
  const ParallelCall* c = &call;  // one pointer captured: std::function stores it without allocating
  pool.run([c](int thread, int n_threads) {
    const int64_t begin = unit_at(c->split, c->n_units, c->total * thread / n_threads);
    const int64_t end = unit_at(c->split, c->n_units, c->total * (thread + 1) / n_threads);
    if (begin < end) run_units(c->isa, *c->args, begin, end);
  });
}

void attention(const float* q, int64_t n_q, int64_t first_pos, int n_heads, const KvBlocks& kv, float scale,
               float* out, ThreadPool& pool) {
  attention_with_isa(active_isa(), q, n_q, first_pos, n_heads, kv, scale, out, pool);
}

}  // namespace morphserve
