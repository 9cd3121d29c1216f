// SequenceKv: one sequence's block table. It holds its pool's liveness token while it holds
// blocks, so that dropping it gives them back, and a table that outlives its pool does nothing.
#include "core/error.h"
#include "engine/kv_block_pool.h"

namespace morphserve {

SequenceKv::SequenceKv(SequenceKv&& other) noexcept
    : blocks(std::move(other.blocks)), n_tokens(other.n_tokens), pool_(std::move(other.pool_)) {
  other.blocks.clear();
  other.n_tokens = 0;
  other.pool_.reset();
}

SequenceKv& SequenceKv::operator=(SequenceKv&& other) {
  if (this == &other) return *this;
  if (KvBlockPool* p = pool()) release_all(*p);
  blocks = std::move(other.blocks);
  n_tokens = other.n_tokens;
  pool_ = std::move(other.pool_);
  other.blocks.clear();
  other.n_tokens = 0;
  other.pool_.reset();
  return *this;
}

SequenceKv::~SequenceKv() {
  // A table dropped while holding blocks (a request torn down mid-flight) gives them back rather
  // than leaking capacity. release() only throws on a corrupted table, and then terminating is right.
  if (KvBlockPool* p = pool()) release_all(*p);
}

void SequenceKv::check_pool(const KvBlockPool& pool) const {
  if (this->pool() && this->pool() != &pool) fail<InvalidArgument>("this block table holds blocks of another KV pool");
}

bool SequenceKv::reserve(KvBlockPool& pool, int64_t n_positions) {
  check_pool(pool);
  const int64_t bs = pool.layout().block_size;
  const int64_t needed = (n_positions + bs - 1) / bs - static_cast<int64_t>(blocks.size());
  if (needed <= 0) return true;
  if (needed > pool.free_blocks()) return false;
  for (int64_t i = 0; i < needed; ++i) blocks.push_back(pool.allocate());
  pool_ = pool.self_;
  return true;
}

void SequenceKv::release_all(KvBlockPool& pool) {
  check_pool(pool);
  for (int32_t b : blocks) pool.release(b);
  blocks.clear();
  n_tokens = 0;
  pool_.reset();
}

SequenceKv SequenceKv::fork(KvBlockPool& pool) const {
  check_pool(pool);
  SequenceKv copy;
  // Bound before the first retain, so a failure part-way releases what was taken.
  copy.pool_ = pool.self_;
  copy.blocks.reserve(blocks.size());
  for (int32_t b : blocks) {
    pool.retain(b);
    copy.blocks.push_back(b);
  }
  copy.n_tokens = n_tokens;
  if (copy.blocks.empty()) copy.pool_.reset();
  return copy;
}

}  // namespace morphserve
