#include "engine/kv_block_pool.h"

#include <set>

#include <gtest/gtest.h>

#include "core/error.h"

namespace morphserve {
namespace {

KvLayout small_layout() { return KvLayout{3, 4, 8, DType::F16}; }

TEST(KvBlockPool, SizesBlocksForEveryLayerKAndV) {
  const KvLayout layout = small_layout();
  EXPECT_EQ(layout.half_layer_bytes(), 4u * 8u * 2u);
  EXPECT_EQ(layout.block_bytes(), 2u * 3u * 64u);
  KvBlockPool pool(layout, 10);
  EXPECT_EQ(pool.capacity_blocks(), 10);
  EXPECT_EQ(pool.bytes(), 10 * layout.block_bytes());
}

TEST(KvBlockPool, AllocatesEachBlockOnceAndConservesBlocks) {
  KvBlockPool pool(small_layout(), 5);
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
  KvBlockPool pool(small_layout(), 2);
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
  KvBlockPool pool(small_layout(), 3);
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
  EXPECT_THROW(KvBlockPool(KvLayout{0, 16, 8, DType::F16}, 1), InvalidArgument);
  EXPECT_THROW(KvBlockPool(KvLayout{1, 0, 8, DType::F16}, 1), InvalidArgument);
  EXPECT_THROW(KvBlockPool(KvLayout{1, 16, 8, DType::Q8_0}, 1), InvalidArgument);
  EXPECT_THROW(KvBlockPool(small_layout(), 0), InvalidArgument);
}

}  // namespace
}  // namespace morphserve
