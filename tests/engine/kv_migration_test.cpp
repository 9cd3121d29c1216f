// Migration between KV segments, and a randomized run of interleaved pool operations checking
// that blocks are conserved and that every table still reads the bytes written into it.
#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/aligned_buffer.h"
#include "engine/kv_block_pool.h"
#include "test_backend.h"

namespace morphserve {
namespace {

KvLayout three_layer_layout() { return KvLayout{3, 4, 8, DType::F16}; }

std::byte pattern_byte(uint32_t seed, int layer, int half, size_t i) {
  return static_cast<std::byte>((seed * 2654435761u + static_cast<uint32_t>(layer) * 97u +
                                 static_cast<uint32_t>(half) * 31u + static_cast<uint32_t>(i) * 7u) >> 3);
}

void fill(KvBlockPool& pool, int32_t block, uint32_t seed) {
  const size_t n = pool.layout().half_layer_bytes();
  for (int l = 0; l < pool.layout().n_layers; ++l) {
    for (size_t i = 0; i < n; ++i) {
      pool.k_data(block, l)[i] = pattern_byte(seed, l, 0, i);
      pool.v_data(block, l)[i] = pattern_byte(seed, l, 1, i);
    }
  }
}

bool holds(KvBlockPool& pool, int32_t block, uint32_t seed) {
  const size_t n = pool.layout().half_layer_bytes();
  for (int l = 0; l < pool.layout().n_layers; ++l) {
    for (size_t i = 0; i < n; ++i) {
      if (pool.k_data(block, l)[i] != pattern_byte(seed, l, 0, i)) return false;
      if (pool.v_data(block, l)[i] != pattern_byte(seed, l, 1, i)) return false;
    }
  }
  return true;
}

TEST(KvMigration, PreservesBytesAndKeepsTheIdEveryTableSharingTheBlockHolds) {
  const KvLayout layout = three_layer_layout();
  KvBlockPool pool(layout, 2, test_backend());
  AlignedBuffer memory(2 * layout.block_bytes());
  const int seg = pool.add_segment(memory.data(), memory.size());
  SequenceKv filler;
  ASSERT_TRUE(filler.reserve(pool, 2 * layout.block_size));  // the base is full
  SequenceKv a;
  ASSERT_TRUE(a.reserve(pool, 2 * layout.block_size));  // both blocks in the segment
  ASSERT_EQ(pool.segment_of(a.blocks[1]), seg);
  fill(pool, a.blocks[0], 11);
  fill(pool, a.blocks[1], 22);
  SequenceKv b = a.fork(pool);
  ASSERT_EQ(pool.refcount(a.blocks[1]), 2);
  filler.release_all(pool);  // room in the base

  const int32_t block = a.blocks[1];
  const std::vector<int32_t> tables_before = a.blocks;
  const std::byte* bytes_before = pool.k_data(block, 0);
  ASSERT_TRUE(pool.migrate(block));
  EXPECT_EQ(pool.segment_of(block), KvBlockPool::kBaseSegment);
  EXPECT_NE(pool.k_data(block, 0), bytes_before) << "the bytes moved";
  EXPECT_EQ(a.blocks, tables_before) << "no table changes: the id stays";
  EXPECT_EQ(b.blocks, tables_before);
  EXPECT_EQ(pool.refcount(block), 2);
  EXPECT_TRUE(holds(pool, block, 22));
  EXPECT_TRUE(holds(pool, a.blocks[0], 11));
  EXPECT_EQ(pool.used_blocks(), 2);
  EXPECT_EQ(pool.segment_used_blocks(seg), 1);  // a.blocks[0] stayed
  EXPECT_EQ(pool.used_blocks() + pool.free_blocks() + pool.draining_free_blocks(), pool.capacity_blocks());
  a.release_all(pool);
  b.release_all(pool);
  EXPECT_THROW(pool.migrate(block), InvalidArgument);  // free now
}

TEST(KvMigration, ReturnsFalseWithoutRoomAndChangesNothing) {
  const KvLayout layout = three_layer_layout();
  KvBlockPool pool(layout, 1, test_backend());
  AlignedBuffer memory(layout.block_bytes());
  pool.add_segment(memory.data(), memory.size());
  SequenceKv seq;
  ASSERT_TRUE(seq.reserve(pool, 2 * layout.block_size));
  fill(pool, seq.blocks[1], 5);
  const std::vector<int32_t> before = seq.blocks;
  const std::byte* bytes_before = pool.k_data(seq.blocks[1], 0);
  EXPECT_FALSE(pool.migrate(seq.blocks[1]));
  EXPECT_EQ(pool.k_data(seq.blocks[1], 0), bytes_before);
  EXPECT_EQ(seq.blocks, before);
  EXPECT_TRUE(holds(pool, seq.blocks[1], 5));
  EXPECT_EQ(pool.used_blocks(), 2);
}

TEST(KvMigration, DrainsASegmentAsFarAsRoomAllowsThenRemovesIt) {
  const KvLayout layout = three_layer_layout();
  KvBlockPool pool(layout, 3, test_backend());
  AlignedBuffer memory(4 * layout.block_bytes());
  const int seg = pool.add_segment(memory.data(), memory.size());
  SequenceKv base_user, seg_user;
  ASSERT_TRUE(base_user.reserve(pool, 2 * layout.block_size));  // 2 of 3 base blocks
  ASSERT_TRUE(seg_user.reserve(pool, 4 * layout.block_size));   // 1 base + 3 segment blocks
  for (size_t i = 0; i < seg_user.blocks.size(); ++i) fill(pool, seg_user.blocks[i], 100 + static_cast<uint32_t>(i));
  pool.stop_allocating(seg);
  EXPECT_EQ(pool.migrate_segment(seg), 3);  // the base is full: nothing moves
  base_user.release_all(pool);              // two base blocks free
  EXPECT_EQ(pool.migrate_segment(seg), 1);
  EXPECT_EQ(pool.segment_used_blocks(seg), 1);
  EXPECT_THROW(pool.remove_segment(seg), InvalidArgument);
  for (size_t i = 0; i < seg_user.blocks.size(); ++i) EXPECT_TRUE(holds(pool, seg_user.blocks[i], 100 + static_cast<uint32_t>(i)));
  const int32_t stuck = seg_user.blocks.back();
  ASSERT_EQ(pool.segment_of(stuck), seg);
  // Another segment can take it too: any allocating segment other than the source.
  AlignedBuffer spare(layout.block_bytes());
  const int other = pool.add_segment(spare.data(), spare.size());
  EXPECT_EQ(pool.migrate_segment(seg), 0);
  EXPECT_EQ(pool.segment_of(seg_user.blocks.back()), other);
  EXPECT_TRUE(pool.segment_empty(seg));
  pool.remove_segment(seg);
  EXPECT_EQ(pool.capacity_blocks(), 4);
  for (size_t i = 0; i < seg_user.blocks.size(); ++i) EXPECT_TRUE(holds(pool, seg_user.blocks[i], 100 + static_cast<uint32_t>(i)));
  EXPECT_EQ(pool.used_blocks() + pool.free_blocks() + pool.draining_free_blocks(), pool.capacity_blocks());
}

// The randomized run: tables (some sharing blocks through fork), segments coming and going,
// single-block and whole-segment migrations; after every operation, conservation and contents.
struct Table {
  std::unique_ptr<SequenceKv> kv = std::make_unique<SequenceKv>();
  std::vector<uint32_t> seeds;  // the pattern written into each entry's block
};

void check_pool(KvBlockPool& pool, const std::vector<Table>& tables, size_t op) {
  SCOPED_TRACE(::testing::Message() << "after operation " << op);
  ASSERT_EQ(pool.used_blocks() + pool.free_blocks() + pool.draining_free_blocks(), pool.capacity_blocks());
  int64_t capacity = 0, allocatable_free = 0, used = 0;
  for (int s : pool.segment_ids()) {
    capacity += pool.segment_blocks(s);
    used += pool.segment_used_blocks(s);
    if (pool.is_allocating(s)) allocatable_free += pool.segment_blocks(s) - pool.segment_used_blocks(s);
  }
  ASSERT_EQ(capacity, pool.capacity_blocks());
  ASSERT_EQ(used, pool.used_blocks());
  ASSERT_EQ(allocatable_free, pool.free_blocks());
  std::map<int32_t, int32_t> references;
  for (const Table& t : tables) {
    ASSERT_EQ(t.kv->blocks.size(), t.seeds.size());
    ASSERT_EQ(t.kv->pool() != nullptr, !t.kv->blocks.empty()) << "a table is bound to its pool exactly while it holds blocks";
    for (size_t i = 0; i < t.seeds.size(); ++i) {
      const int32_t b = t.kv->blocks[i];
      ++references[b];
      ASSERT_GT(pool.refcount(b), 0);
      ASSERT_TRUE(holds(pool, b, t.seeds[i])) << "block " << b;
    }
  }
  ASSERT_EQ(static_cast<int64_t>(references.size()), pool.used_blocks());
  for (const auto& [block, n] : references) ASSERT_EQ(pool.refcount(block), n);
}

void run_random_operations(uint32_t seed, size_t n_ops) {
  const KvLayout layout = three_layer_layout();
  KvBlockPool pool(layout, 6, test_backend());
  std::mt19937 rng(seed);
  auto pick = [&](size_t n) { return static_cast<size_t>(std::uniform_int_distribution<size_t>(0, n - 1)(rng)); };
  std::vector<Table> tables;
  std::map<int, std::unique_ptr<AlignedBuffer>> memory;  // attached segments' memory, by segment id
  uint32_t next_seed = 1;
  size_t migrations = 0, removals = 0;
  int64_t max_capacity = pool.capacity_blocks();

  for (size_t op = 0; op < n_ops; ++op) {
    // A full pool makes most operations no-ops: then drop a table more often.
    const size_t kind = pool.free_blocks() == 0 && pick(2) == 0 ? 3 : pick(10);
    if (kind <= 2) {  // grow a table (a new one a third of the time)
      if (tables.empty() || pick(3) == 0) tables.emplace_back();
      Table& t = tables[pick(tables.size())];
      const size_t old_size = t.kv->blocks.size();
      const auto positions = static_cast<int64_t>(old_size * layout.block_size + 1 + pick(3 * layout.block_size));
      if (t.kv->reserve(pool, positions)) {
        for (size_t i = old_size; i < t.kv->blocks.size(); ++i) {
          t.seeds.push_back(next_seed);
          fill(pool, t.kv->blocks[i], next_seed++);
        }
      } else {
        EXPECT_EQ(t.kv->blocks.size(), old_size);
      }
    } else if (kind == 3 && !tables.empty()) {  // a table goes away, by release_all or destructor
      const size_t i = pick(tables.size());
      if (pick(2) == 0) tables[i].kv->release_all(pool);
      tables.erase(tables.begin() + static_cast<std::ptrdiff_t>(i));
    } else if (kind == 4 && !tables.empty()) {  // fork: every block shared once more
      Table& t = tables[pick(tables.size())];
      Table copy;
      *copy.kv = t.kv->fork(pool);
      copy.seeds = t.seeds;
      tables.push_back(std::move(copy));
    } else if (kind == 5 && memory.size() < 5) {  // attach a segment, misaligned on purpose
      const size_t n_blocks = 1 + pick(5);
      const size_t offset = pick(70);
      auto buffer = std::make_unique<AlignedBuffer>(n_blocks * layout.block_bytes() + 64 + offset);
      const int s = pool.add_segment(buffer->data() + offset, buffer->size() - offset);
      ASSERT_GE(pool.segment_blocks(s), static_cast<int64_t>(n_blocks));
      memory[s] = std::move(buffer);
    } else if (kind == 6 && !memory.empty()) {  // start draining a segment (or change its mind)
      auto it = std::next(memory.begin(), static_cast<std::ptrdiff_t>(pick(memory.size())));
      if (pick(4) == 0) pool.resume_allocating(it->first);
      else pool.stop_allocating(it->first);
    } else if (kind == 7 && !memory.empty()) {  // migrate a segment out, remove it when empty
      auto it = std::next(memory.begin(), static_cast<std::ptrdiff_t>(pick(memory.size())));
      const int s = it->first;
      const int64_t live = pool.segment_used_blocks(s);
      const int64_t left = pool.migrate_segment(s);
      ASSERT_EQ(left, pool.segment_used_blocks(s));
      migrations += static_cast<size_t>(live - left);
      if (left == 0 && !pool.is_allocating(s)) {
        pool.remove_segment(s);
        memory.erase(it);  // freed memory: a stale pointer would now read garbage
        ++removals;
      }
    } else if (kind == 8 && !memory.empty()) {  // remove without checking: throws unless empty
      auto it = std::next(memory.begin(), static_cast<std::ptrdiff_t>(pick(memory.size())));
      if (pool.segment_empty(it->first)) {
        pool.remove_segment(it->first);
        memory.erase(it);
        ++removals;
      } else {
        EXPECT_THROW(pool.remove_segment(it->first), InvalidArgument);
      }
    } else if (kind == 9 && !tables.empty()) {  // migrate one live block
      Table& t = tables[pick(tables.size())];
      if (t.kv->blocks.empty()) continue;
      const int32_t block = t.kv->blocks[pick(t.kv->blocks.size())];
      const int from = pool.segment_of(block);
      if (pool.migrate(block)) {
        EXPECT_NE(pool.segment_of(block), from);
        ++migrations;
      }
    }
    check_pool(pool, tables, op);
    if (::testing::Test::HasFatalFailure()) return;
    // The id space is at most the most blocks ever live at once, whatever came and went.
    max_capacity = std::max(max_capacity, pool.capacity_blocks());
    ASSERT_LE(static_cast<int64_t>(pool.id_space()), max_capacity) << "after operation " << op;
  }
  // The run exercised what it is meant to (not a property of the pool, a property of the test).
  EXPECT_GT(migrations, 50u);
  EXPECT_GT(removals, 20u);
  tables.clear();
  EXPECT_EQ(pool.used_blocks(), 0);
}

TEST(KvMigration, RandomizedInterleavedOperationsConserveBlocksAndContents) {
  for (uint32_t seed : {1u, 2u, 3u, 4u}) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    run_random_operations(seed, 1500);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace morphserve
