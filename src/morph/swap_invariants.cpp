// LayerSwapper::check_invariants: the memory-safety rules of morphing, checked after every
// boundary in debug builds and by the tests (layer_swapper.h).
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "engine/kv_block_pool.h"
#include "morph/layer_swapper.h"

namespace morphserve {
namespace {

void invariant(bool ok, const std::string& what) {
  if (!ok) throw std::logic_error("morphing invariant broken: " + what);
}

}  // namespace

void LayerSwapper::check_invariants(const KvBlockPool& kv) const {
  const size_t block_bytes = kv.layout().block_bytes();
  int64_t lent_blocks = 0;
  for (int l = 0; l < n_layers(); ++l) {
    const Layer& layer = layers_[static_cast<size_t>(l)];
    // Bytes the weights may occupy: the current packing, and during a swap whatever the copy
    // into the region writes or the runner still reads there.
    size_t weights_end = layer.on_slot >= 0 ? 0 : packing(l, layer.precision).bytes;
    if (layer.op && layer.op->region_copy_started()) {
      weights_end = std::max(weights_end, packing(l, layer.op->to).bytes);
    }
    size_t cursor = weights_end;
    for (const RegionSegment& s : layer.segments) {
      invariant(s.offset >= cursor, fmt::format("layer {}: KV segment {} at byte {} overlaps weights or another "
                                                "segment ending at {}", l, s.segment, s.offset, cursor));
      invariant(s.offset + s.bytes <= layer.region.size(),
                fmt::format("layer {}: KV segment {} runs past the region", l, s.segment));
      const int64_t blocks = kv.segment_blocks(s.segment);
      invariant(static_cast<size_t>(blocks) * block_bytes <= s.bytes,
                fmt::format("layer {}: segment {} holds more blocks than its bytes", l, s.segment));
      lent_blocks += blocks;
      cursor = s.offset + s.bytes;
    }
  }
  invariant(kv.capacity_blocks() * static_cast<int64_t>(block_bytes) ==
                static_cast<int64_t>(kv.owned_bytes() / block_bytes * block_bytes) + lent_blocks * static_cast<int64_t>(block_bytes),
            "the KV pool's capacity is not its own blocks plus the blocks lent by layer regions");
  const MemoryBudget& budget = backend_.budget();
  invariant(budget.held(kLentAccount) == static_cast<size_t>(lent_blocks) * block_bytes,
            "the budget ledger disagrees with the blocks lent by layer regions");
  invariant(budget.held(kRegionAccount) + budget.held(kLentAccount) == region_total_,
            "the budget ledger lost layer-region bytes");
  invariant(budget.used() <= budget.budget(), "resident memory exceeds the budget");
  invariant(kv.used_blocks() + kv.free_blocks() + kv.draining_free_blocks() == kv.capacity_blocks(),
            "KV blocks are not conserved");
}

}  // namespace morphserve
