// A thousand interleaved operations on a KV pool whose capacity moves with layer swaps:
// sequences grow, fork and finish; layers swap down and up one rung or straight to the bottom;
// restores get abandoned. After every operation blocks are conserved (used + free + draining
// free == capacity), every invariant of the regions and the budget holds, and every sequence
// still reads the bytes written into its blocks, whatever migrations moved them.
#include <cstdio>
#include <map>
#include <random>

#include <gtest/gtest.h>

#include "swap_rig.h"

namespace morphserve {
namespace {

using testing::SwapRig;

std::byte stamp(uint32_t seq, int32_t index, int layer) {
  return static_cast<std::byte>((seq * 131u + static_cast<uint32_t>(index) * 17u + static_cast<uint32_t>(layer) * 5u) & 0xff);
}

struct Tracked {
  SequenceKv kv;
  uint32_t id = 0;
};

void write_stamps(KvBlockPool& pool, Tracked& t, size_t from_block) {
  for (size_t b = from_block; b < t.kv.blocks.size(); ++b) {
    for (int l = 0; l < pool.layout().n_layers; ++l) {
      pool.k_data(t.kv.blocks[b], l)[0] = stamp(t.id, static_cast<int32_t>(b), l);
      pool.v_data(t.kv.blocks[b], l)[pool.layout().half_layer_bytes() - 1] = stamp(t.id, static_cast<int32_t>(b), l);
    }
  }
}

bool stamps_intact(KvBlockPool& pool, const Tracked& t, uint32_t owner) {
  for (size_t b = 0; b < t.kv.blocks.size(); ++b) {
    for (int l = 0; l < pool.layout().n_layers; ++l) {
      if (pool.k_data(t.kv.blocks[b], l)[0] != stamp(owner, static_cast<int32_t>(b), l)) return false;
      if (pool.v_data(t.kv.blocks[b], l)[pool.layout().half_layer_bytes() - 1] != stamp(owner, static_cast<int32_t>(b), l)) {
        return false;
      }
    }
  }
  return true;
}

TEST(SwapRandomized, AThousandInterleavedOperationsConserveBlocksAndBytes) {
  SwapRig rig(/*base_blocks=*/6, /*staging_slots=*/2);
  std::mt19937 rng(20261128);
  std::vector<std::unique_ptr<Tracked>> seqs;
  std::map<const Tracked*, uint32_t> owner;  // forks read their parent's stamps
  uint32_t next_id = 1;
  int swaps_started = 0, swaps_finished = 0, restores_aborted = 0, forks = 0, grown = 0;
  int64_t blocks_migrated = 0;
  const int n_layers = rig.swapper.n_layers();

  auto check = [&](int op) {
    ASSERT_NO_THROW(rig.swapper.check_invariants(rig.kv)) << "after operation " << op;
    ASSERT_EQ(rig.kv.used_blocks() + rig.kv.free_blocks() + rig.kv.draining_free_blocks(), rig.kv.capacity_blocks());
    for (const auto& s : seqs) ASSERT_TRUE(stamps_intact(rig.kv, *s, owner[s.get()])) << "after operation " << op;
    ASSERT_LE(rig.budget.used(), rig.budget.budget());
  };

  for (int op = 0; op < 1000; ++op) {
    const int kind = static_cast<int>(rng() % 12);
    if (kind <= 2) {  // a new sequence (at most eight live) or a longer one
      if (seqs.empty() || (seqs.size() < 8 && rng() % 2 == 0)) {
        auto t = std::make_unique<Tracked>();
        t->id = next_id++;
        owner[t.get()] = t->id;
        seqs.push_back(std::move(t));
      }
      Tracked& t = *seqs[rng() % seqs.size()];
      if (owner[&t] != t.id) continue;  // forks stay as forked (shared blocks are read-only)
      const size_t before = t.kv.blocks.size();
      if (t.kv.reserve(rig.kv, t.kv.n_tokens + 1 + static_cast<int64_t>(rng() % 40))) {
        t.kv.n_tokens = static_cast<int64_t>(t.kv.blocks.size()) * rig.kv.layout().block_size;
        write_stamps(rig.kv, t, before);
        ++grown;
      }
    } else if (kind <= 4 && !seqs.empty()) {  // a request finishes
      const size_t i = rng() % seqs.size();
      seqs[i]->kv.release_all(rig.kv);
      owner.erase(seqs[i].get());
      seqs.erase(seqs.begin() + static_cast<std::ptrdiff_t>(i));
    } else if (kind == 5 && !seqs.empty() && seqs.size() < 8) {  // n > 1: a fork sharing every block
      const Tracked& parent = *seqs[rng() % seqs.size()];
      auto t = std::make_unique<Tracked>();
      t->kv = parent.kv.fork(rig.kv);
      t->id = next_id++;
      owner[t.get()] = owner[&parent];
      seqs.push_back(std::move(t));
      ++forks;
    } else if (kind <= 8) {  // a swap to any rung
      const int layer = static_cast<int>(rng() % static_cast<uint32_t>(n_layers));
      const auto& ladder = rig.swapper.ladder(layer);
      if (rig.swapper.start(layer, ladder[rng() % ladder.size()], rig.kv)) ++swaps_started;
    } else if (kind == 9 && rng() % 3 == 0) {  // pressure came back during a restore
      for (int l = 0; l < n_layers; ++l) {
        if (rig.swapper.abort_restore(l, rig.kv, rig.runner)) ++restores_aborted;
      }
    } else {  // boundaries pass; sometimes the copies have finished by then, sometimes not
      if (rng() % 2 == 0) rig.swapper.wait_idle();
      for (int i = 0; i < 3; ++i) {
        for (const SwapRecord& r : rig.swapper.advance(rig.kv, rig.runner)) {
          ++swaps_finished;
          blocks_migrated += r.blocks_migrated;
        }
      }
    }
    check(op);
    if (::testing::Test::HasFatalFailure()) return;
  }
  for (auto& s : seqs) s->kv.release_all(rig.kv);
  rig.settle();
  // Every layer goes back to full precision, and the capacity to the base.
  for (int l = 0; l < n_layers; ++l) {
    if (rig.swapper.precision(l) != DType::F16) rig.swap(l, DType::F16);
  }
  EXPECT_EQ(rig.kv.capacity_blocks(), 6);
  EXPECT_EQ(rig.kv.used_blocks(), 0);
  EXPECT_EQ(rig.budget.held(kLentAccount), 0u);
  // The run exercised what it claims to (fixed seed: these counts are deterministic but for how
  // far the worker's copies got at each boundary).
  EXPECT_GT(swaps_started, 50);
  EXPECT_GT(swaps_finished, 30);
  EXPECT_GT(blocks_migrated, 0);
  EXPECT_GT(grown, 50);
  EXPECT_GT(forks, 10);
  std::printf("%d swaps started, %d finished, %lld blocks migrated, %d restores aborted, %d forks\n", swaps_started,
              swaps_finished, static_cast<long long>(blocks_migrated), restores_aborted, forks);
}

}  // namespace
}  // namespace morphserve
