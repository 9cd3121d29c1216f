// SequenceKv: one sequence's block table, registered with its pool while it holds blocks so that
// migration can repoint it.
#include "core/error.h"
#include "engine/kv_block_pool.h"

namespace morphserve {

SequenceKv::SequenceKv(SequenceKv&& other) noexcept : blocks(std::move(other.blocks)), n_tokens(other.n_tokens) {
  other.blocks.clear();
  other.n_tokens = 0;
  if (other.pool_) other.pool_->move_table(&other, this);
}

SequenceKv& SequenceKv::operator=(SequenceKv&& other) {
  if (this == &other) return *this;
  if (pool_) release_all(*pool_);
  blocks = std::move(other.blocks);
  n_tokens = other.n_tokens;
  other.blocks.clear();
  other.n_tokens = 0;
  if (other.pool_) other.pool_->move_table(&other, this);
  return *this;
}

SequenceKv::~SequenceKv() {
  // A table dropped while holding blocks (a request torn down mid-flight) gives them back rather
  // than leaking capacity. release() only throws on a corrupted table, and then terminating is right.
  if (pool_) release_all(*pool_);
}

void SequenceKv::check_pool(const KvBlockPool& pool) const {
  if (pool_ && pool_ != &pool) fail<InvalidArgument>("this block table holds blocks of another KV pool");
}

bool SequenceKv::reserve(KvBlockPool& pool, int64_t n_positions) {
  check_pool(pool);
  const int64_t bs = pool.layout().block_size;
  const int64_t needed = (n_positions + bs - 1) / bs - static_cast<int64_t>(blocks.size());
  if (needed <= 0) return true;
  if (needed > pool.free_blocks()) return false;
  for (int64_t i = 0; i < needed; ++i) blocks.push_back(pool.allocate());
  if (!pool_) pool.register_table(this);
  return true;
}

void SequenceKv::release_all(KvBlockPool& pool) {
  check_pool(pool);
  for (int32_t b : blocks) pool.release(b);
  blocks.clear();
  n_tokens = 0;
  if (pool_) pool.unregister_table(this);
}

SequenceKv SequenceKv::fork(KvBlockPool& pool) const {
  check_pool(pool);
  SequenceKv copy;
  // Registered before the first retain, so a failure part-way releases what was taken.
  pool.register_table(&copy);
  copy.blocks.reserve(blocks.size());
  for (int32_t b : blocks) {
    pool.retain(b);
    copy.blocks.push_back(b);
  }
  copy.n_tokens = n_tokens;
  if (copy.blocks.empty()) pool.unregister_table(&copy);
  return copy;  // the move constructor carries the registration to the caller's object
}

}  // namespace morphserve
