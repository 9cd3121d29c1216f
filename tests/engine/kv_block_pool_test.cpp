#include "core/aligned_buffer.h"
#include "engine/kv_block_pool.h"

#include <set>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "test_backend.h"

namespace morphserve {
namespace {

KvLayout small_layout() { return KvLayout{3, 4, 8, DType::F16}; }

TEST(KvBlockPool, SizesBlocksForEveryLayerKAndV) {
  const KvLayout layout = small_layout();
  EXPECT_EQ(layout.half_layer_bytes(), 4u * 8u * 2u);
  EXPECT_EQ(layout.block_bytes(), 2u * 3u * 64u);
  KvBlockPool pool(layout, 10, test_backend());
  EXPECT_EQ(pool.capacity_blocks(), 10);
  EXPECT_EQ(pool.bytes(), 10 * layout.block_bytes());
}

TEST(KvBlockPool, AllocatesEachBlockOnceAndConservesBlocks) {
  KvBlockPool pool(small_layout(), 5, test_backend());
  std::set<int32_t> seen;
  for (int i = 0; i < 5; ++i) {
    const int32_t b = pool.allocate();
    ASSERT_GE(b, 0);
    EXPECT_TRUE(seen.insert(b).second);
    EXPECT_EQ(pool.used_blocks() + pool.free_blocks(), pool.capacity_blocks());
  }
  EXPECT_EQ(pool.allocate(), -1);
  pool.release(*seen.begin());
  EXPECT_EQ(pool.free_blocks(), 1);
  EXPECT_THROW(pool.release(*seen.begin()), InvalidArgument);  // double free
  EXPECT_THROW(pool.release(99), InvalidArgument);
}

TEST(KvBlockPool, LayerSlicesDoNotOverlap) {
  KvBlockPool pool(small_layout(), 2, test_backend());
  const int32_t a = pool.allocate();
  const int32_t b = pool.allocate();
  std::set<const std::byte*> starts;
  for (int32_t block : {a, b}) {
    for (int l = 0; l < 3; ++l) {
      EXPECT_TRUE(starts.insert(pool.k_data(block, l)).second);
      EXPECT_TRUE(starts.insert(pool.v_data(block, l)).second);
      EXPECT_EQ(pool.v_data(block, l) - pool.k_data(block, l), static_cast<std::ptrdiff_t>(small_layout().half_layer_bytes()));
    }
  }
}

TEST(SequenceKv, ReservesWholeBlocksAndFailsWithoutPartialAllocation) {
  KvBlockPool pool(small_layout(), 3, test_backend());
  SequenceKv seq;
  EXPECT_TRUE(seq.reserve(pool, 5));  // 2 blocks of 4
  EXPECT_EQ(seq.blocks.size(), 2u);
  EXPECT_TRUE(seq.reserve(pool, 8));
  EXPECT_EQ(seq.blocks.size(), 2u);
  EXPECT_FALSE(seq.reserve(pool, 20));
  EXPECT_EQ(seq.blocks.size(), 2u);
  EXPECT_EQ(pool.free_blocks(), 1);
  seq.release_all(pool);
  EXPECT_EQ(pool.free_blocks(), 3);
}

TEST(KvBlockPool, RejectsImpossibleLayouts) {
  EXPECT_THROW(KvBlockPool(KvLayout{0, 16, 8, DType::F16}, 1, test_backend()), InvalidArgument);
  EXPECT_THROW(KvBlockPool(KvLayout{1, 0, 8, DType::F16}, 1, test_backend()), InvalidArgument);
  EXPECT_THROW(KvBlockPool(KvLayout{1, 16, 8, DType::Q8_0}, 1, test_backend()), InvalidArgument);
  EXPECT_THROW(KvBlockPool(small_layout(), 0, test_backend()), InvalidArgument);
}

TEST(KvBlockPool, CountsReferencesAndFreesAtZero) {
  KvBlockPool pool(small_layout(), 2, test_backend());
  const int32_t b = pool.allocate();
  EXPECT_EQ(pool.refcount(b), 1);
  pool.retain(b);
  EXPECT_EQ(pool.refcount(b), 2);
  pool.release(b);
  EXPECT_EQ(pool.used_blocks(), 1);
  pool.release(b);
  EXPECT_EQ(pool.refcount(b), 0);
  EXPECT_EQ(pool.used_blocks(), 0);
  EXPECT_EQ(pool.free_blocks(), 2);
  EXPECT_THROW(pool.release(b), InvalidArgument);
  EXPECT_THROW(pool.retain(b), InvalidArgument);
  EXPECT_THROW(pool.refcount(7), InvalidArgument);
}

TEST(KvBlockPool, SegmentsAddAndRemoveCapacity) {
  const KvLayout layout = small_layout();
  KvBlockPool pool(layout, 4, test_backend());
  // Start 5 bytes past an aligned address: the segment skips to the next 64-byte boundary.
  AlignedBuffer memory(4 * layout.block_bytes());
  const int seg = pool.add_segment(memory.data() + 5, 3 * layout.block_bytes() + 59);
  EXPECT_NE(seg, KvBlockPool::kBaseSegment);
  EXPECT_EQ(pool.segment_blocks(seg), 3);
  EXPECT_EQ(pool.capacity_blocks(), 7);
  EXPECT_EQ(pool.free_blocks(), 7);
  EXPECT_EQ(pool.bytes(), 7 * layout.block_bytes());
  EXPECT_EQ(pool.owned_bytes(), 4 * layout.block_bytes());
  EXPECT_EQ(pool.segment_ids(), (std::vector<int>{KvBlockPool::kBaseSegment, seg}));
  pool.remove_segment(seg);
  EXPECT_EQ(pool.capacity_blocks(), 4);
  EXPECT_EQ(pool.free_blocks(), 4);
  EXPECT_EQ(pool.segment_ids(), (std::vector<int>{KvBlockPool::kBaseSegment}));
  EXPECT_THROW(pool.remove_segment(seg), InvalidArgument);  // stale segment id
  EXPECT_THROW(pool.segment_blocks(seg), InvalidArgument);
  EXPECT_THROW(pool.remove_segment(KvBlockPool::kBaseSegment), InvalidArgument);
  EXPECT_THROW(pool.add_segment(memory.data(), layout.block_bytes() - 1), InvalidArgument);
  EXPECT_THROW(pool.add_segment(memory.data() + 1, layout.block_bytes()), InvalidArgument);  // 63 bytes lost to alignment
  EXPECT_THROW(pool.add_segment(nullptr, layout.block_bytes()), InvalidArgument);
}

TEST(KvBlockPool, SegmentBlocksLiveInTheAttachedMemory) {
  const KvLayout layout = small_layout();
  KvBlockPool pool(layout, 1, test_backend());
  AlignedBuffer memory(2 * layout.block_bytes());
  const int seg = pool.add_segment(memory.data(), memory.size());
  pool.allocate();  // the base block
  for (int i = 0; i < 2; ++i) {
    const int32_t b = pool.allocate();
    EXPECT_EQ(pool.segment_of(b), seg);
    EXPECT_EQ(pool.k_data(b, 0), memory.data() + static_cast<size_t>(i) * layout.block_bytes());
    EXPECT_EQ(pool.v_data(b, 2) + layout.half_layer_bytes(), pool.k_data(b, 0) + layout.block_bytes());
  }
}

TEST(KvBlockPool, RemovingANonEmptySegmentThrows) {
  const KvLayout layout = small_layout();
  KvBlockPool pool(layout, 1, test_backend());
  AlignedBuffer memory(2 * layout.block_bytes());
  const int seg = pool.add_segment(memory.data(), memory.size());
  pool.allocate();
  const int32_t b = pool.allocate();
  ASSERT_EQ(pool.segment_of(b), seg);
  EXPECT_FALSE(pool.segment_empty(seg));
  EXPECT_THROW(pool.remove_segment(seg), InvalidArgument);
  EXPECT_EQ(pool.capacity_blocks(), 3);
  pool.release(b);
  EXPECT_TRUE(pool.segment_empty(seg));
  pool.remove_segment(seg);
  EXPECT_EQ(pool.capacity_blocks(), 1);
  EXPECT_EQ(pool.used_blocks() + pool.free_blocks(), pool.capacity_blocks());
}

TEST(KvBlockPool, AllocatesFromTheBaseFirstThenOldestSegment) {
  const KvLayout layout = small_layout();
  KvBlockPool pool(layout, 2, test_backend());
  AlignedBuffer a_memory(2 * layout.block_bytes()), b_memory(2 * layout.block_bytes());
  const int a = pool.add_segment(a_memory.data(), a_memory.size());
  const int b = pool.add_segment(b_memory.data(), b_memory.size());
  std::vector<int> order;
  std::vector<int32_t> blocks;
  for (int i = 0; i < 6; ++i) {
    blocks.push_back(pool.allocate());
    order.push_back(pool.segment_of(blocks.back()));
  }
  EXPECT_EQ(order, (std::vector<int>{0, 0, a, a, b, b}));
  EXPECT_EQ(blocks, (std::vector<int32_t>{0, 1, 2, 3, 4, 5}));  // lowest id first within a segment
  pool.release(blocks[5]);
  pool.release(blocks[2]);
  pool.release(blocks[0]);
  EXPECT_EQ(pool.segment_of(pool.allocate()), 0);
  EXPECT_EQ(pool.segment_of(pool.allocate()), a);
  EXPECT_EQ(pool.segment_of(pool.allocate()), b);
}

TEST(KvBlockPool, DrainingSegmentGetsNoNewAllocations) {
  const KvLayout layout = small_layout();
  KvBlockPool pool(layout, 2, test_backend());
  AlignedBuffer memory(3 * layout.block_bytes());
  const int seg = pool.add_segment(memory.data(), memory.size());
  pool.allocate();
  pool.allocate();
  const int32_t in_seg = pool.allocate();
  pool.stop_allocating(seg);
  EXPECT_FALSE(pool.is_allocating(seg));
  EXPECT_EQ(pool.capacity_blocks(), 5);
  EXPECT_EQ(pool.used_blocks(), 3);
  EXPECT_EQ(pool.free_blocks(), 0);
  EXPECT_EQ(pool.draining_free_blocks(), 2);
  EXPECT_EQ(pool.allocate(), -1);
  pool.release(in_seg);  // freed into a draining segment: still not allocatable
  EXPECT_EQ(pool.free_blocks(), 0);
  EXPECT_EQ(pool.draining_free_blocks(), 3);
  EXPECT_EQ(pool.used_blocks() + pool.free_blocks() + pool.draining_free_blocks(), pool.capacity_blocks());
  pool.resume_allocating(seg);
  EXPECT_EQ(pool.free_blocks(), 3);
  EXPECT_EQ(pool.draining_free_blocks(), 0);
  EXPECT_EQ(pool.segment_of(pool.allocate()), seg);
}

TEST(KvBlockPool, IdsAreReusedLowestFirstAndStayBoundedAcrossSegments) {
  const KvLayout layout = small_layout();
  KvBlockPool pool(layout, 2, test_backend());
  AlignedBuffer m1(3 * layout.block_bytes()), m2(2 * layout.block_bytes());
  for (int cycle = 0; cycle < 50; ++cycle) {  // a swap cycle: a segment comes, is used, empties, goes
    const int s1 = pool.add_segment(m1.data(), m1.size());
    std::vector<int32_t> live;
    for (int i = 0; i < 5; ++i) live.push_back(pool.allocate());
    EXPECT_EQ(live, (std::vector<int32_t>{0, 1, 2, 3, 4}));
    EXPECT_EQ(pool.segment_of(live[2]), s1);
    EXPECT_EQ(pool.k_data(live[2], 0), m1.data());
    for (int32_t b : live) pool.release(b);
    pool.remove_segment(s1);
  }
  EXPECT_EQ(pool.id_space(), 5u) << "ids of blocks that went are handed out again";
  const int s2 = pool.add_segment(m2.data(), m2.size());
  const int32_t a = pool.allocate(), b = pool.allocate(), c = pool.allocate();
  pool.release(b);
  EXPECT_EQ(pool.allocate(), b) << "the lowest free id first";
  EXPECT_EQ(pool.segment_of(c), s2);
  EXPECT_THROW(pool.segment_of(4), InvalidArgument);  // free
  EXPECT_EQ(pool.refcount(4), 0);
  EXPECT_THROW(pool.refcount(99), InvalidArgument);  // never handed out
  EXPECT_EQ(pool.refcount(a), 1);
}

TEST(SequenceKv, IsBoundToItsPoolWhileHoldingBlocksAndMovesItsBinding) {
  KvBlockPool pool(small_layout(), 4, test_backend());
  SequenceKv a;
  EXPECT_TRUE(a.reserve(pool, 0));
  EXPECT_EQ(a.pool(), nullptr);
  ASSERT_TRUE(a.reserve(pool, 5));
  EXPECT_EQ(a.pool(), &pool);
  SequenceKv b(std::move(a));
  EXPECT_EQ(a.pool(), nullptr);
  EXPECT_TRUE(a.blocks.empty());
  EXPECT_EQ(b.pool(), &pool);
  {
    SequenceKv c = b.fork(pool);
    EXPECT_EQ(c.blocks, b.blocks);
    EXPECT_EQ(c.pool(), &pool);
    EXPECT_EQ(pool.refcount(b.blocks[0]), 2);
    EXPECT_EQ(pool.used_blocks(), 2);
  }  // c's destructor releases its references
  EXPECT_EQ(pool.refcount(b.blocks[0]), 1);
  SequenceKv d;
  ASSERT_TRUE(d.reserve(pool, 1));
  d = std::move(b);  // d's own block goes back to the pool
  EXPECT_EQ(pool.used_blocks(), 2);
  d.release_all(pool);
  EXPECT_EQ(d.pool(), nullptr);
  EXPECT_EQ(pool.free_blocks(), 4);
  KvBlockPool other(small_layout(), 4, test_backend());
  ASSERT_TRUE(d.reserve(pool, 1));
  EXPECT_THROW(d.reserve(other, 8), InvalidArgument);
  EXPECT_THROW(d.release_all(other), InvalidArgument);
}

TEST(SequenceKv, OutlivingItsPoolIsHarmless) {
  SequenceKv seq;
  {
    KvBlockPool pool(small_layout(), 2, test_backend());
    ASSERT_TRUE(seq.reserve(pool, 3));
  }
  EXPECT_EQ(seq.pool(), nullptr);
}

}  // namespace
}  // namespace morphserve
