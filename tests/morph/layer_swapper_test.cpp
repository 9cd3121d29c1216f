// The layer swapper over a real runner and KV pool: every rung of the ladder, the KV the swaps
// lend and take back, forward passes equal to a model converted at load, restores that migrate
// live blocks without changing any output, restores that wait for room, and the budget.
#include <numeric>

#include <gtest/gtest.h>

#include "core/error.h"
#include "engine/model_loader.h"
#include "morph/packed_layer.h"
#include "swap_rig.h"
#include "test_backend.h"

namespace morphserve {
namespace {

using testing::SwapRig;

int64_t lent_blocks(const ReplicaStore& store, int layer, DType from, DType to, size_t block_bytes) {
  const size_t gap = PackedLayer::of(store.replica(layer, from)).bytes - PackedLayer::of(store.replica(layer, to)).bytes;
  return static_cast<int64_t>(gap / block_bytes);
}

std::vector<int32_t> prompt(int n) {
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) tokens[static_cast<size_t>(i)] = 1 + (i * 37) % 500;
  return tokens;
}

TEST(LayerSwapper, EveryRungDownAndUpFlipsTheLayerAndLendsItsFreedTail) {
  SwapRig rig(8);
  const size_t block_bytes = rig.kv.layout().block_bytes();
  const auto& ladder = rig.swapper.ladder(0);
  ASSERT_EQ(ladder, (std::vector<DType>{DType::F16, DType::Q8_0, DType::Q4_0}));
  const int64_t base = rig.kv.capacity_blocks();

  rig.swap(0, DType::Q8_0);
  EXPECT_EQ(rig.runner.layer(0).precision(), DType::Q8_0);
  const int64_t to_w8 = lent_blocks(*rig.store, 0, DType::F16, DType::Q8_0, block_bytes);
  EXPECT_GT(to_w8, 0);
  EXPECT_EQ(rig.kv.capacity_blocks(), base + to_w8);

  rig.swap(0, DType::Q4_0);  // a second segment, below the first
  EXPECT_EQ(rig.runner.layer(0).precision(), DType::Q4_0);
  const int64_t w8_to_w4 = lent_blocks(*rig.store, 0, DType::Q8_0, DType::Q4_0, block_bytes);
  EXPECT_EQ(rig.kv.capacity_blocks(), base + to_w8 + w8_to_w4);
  EXPECT_EQ(rig.swapper.state(0, rig.kv).segments.size(), 2u);

  rig.swap(0, DType::Q8_0);  // only the lower segment goes
  EXPECT_EQ(rig.kv.capacity_blocks(), base + to_w8);
  rig.swap(0, DType::F16);
  EXPECT_EQ(rig.runner.layer(0).precision(), DType::F16);
  EXPECT_EQ(rig.kv.capacity_blocks(), base);
  EXPECT_TRUE(rig.swapper.state(0, rig.kv).segments.empty());

  rig.swap(2, DType::Q4_0);  // straight to the bottom rung and back
  EXPECT_EQ(rig.kv.capacity_blocks(), base + lent_blocks(*rig.store, 2, DType::F16, DType::Q4_0, block_bytes));
  rig.swap(2, DType::F16);
  EXPECT_EQ(rig.kv.capacity_blocks(), base);
  EXPECT_EQ(rig.budget.held(kLentAccount), 0u);
}

TEST(LayerSwapper, ASwappedLayerComputesExactlyWhatAModelConvertedAtLoadDoes) {
  SwapRig rig(32);
  ThreadPool pool(2);
  const LlamaModel reference_w4 = load_model("dummy:tiny", "1:w4,3:w8", pool, test_backend());
  const LlamaModel reference_f16 = load_model("dummy:tiny", "", pool, test_backend());
  auto logits_of = [&](const LlamaModel& model) {
    KvBlockPool kv(KvLayout{model.config.n_layers, 16, model.config.kv_dim(), DType::F16}, 32, test_backend());
    LlamaRunner runner(model, kv, test_backend(), 256);
    SequenceKv seq;
    const auto tokens = prompt(40);
    EXPECT_TRUE(seq.reserve(kv, 40));
    const BatchSequence b{tokens, 0, &seq.blocks, false};
    const auto logits = runner.forward(std::span(&b, 1));
    std::vector<float> out(logits.begin(), logits.end());
    seq.release_all(kv);
    return out;
  };
  auto rig_logits = [&] {
    SequenceKv seq;
    const auto tokens = prompt(40);
    auto out = rig.step(seq, tokens);
    seq.release_all(rig.kv);
    return out;
  };
  EXPECT_EQ(rig_logits(), logits_of(reference_f16));
  rig.swap(1, DType::Q4_0);
  rig.swap(3, DType::Q8_0);
  EXPECT_EQ(rig_logits(), logits_of(reference_w4));
  rig.swap(1, DType::F16);
  rig.swap(3, DType::F16);
  EXPECT_EQ(rig_logits(), logits_of(reference_f16));
}

TEST(LayerSwapper, NoFlipHappensOutsideAdvanceAndTheRunnerReadsValidWeightsAtEveryBoundary) {
  SwapRig rig(32);
  SequenceKv seq;
  auto tokens = prompt(8);
  rig.step(seq, tokens);
  ASSERT_TRUE(rig.swapper.start(0, DType::Q4_0, rig.kv));
  EXPECT_EQ(rig.runner.layer(0).precision(), DType::F16);  // nothing flips before a boundary
  // Decode through the whole swap: each boundary may flip, every pass runs on whole weights.
  int32_t next = 3;
  for (int i = 0; i < 200 && rig.swapper.in_flight() > 0; ++i) {
    rig.swapper.advance(rig.kv, rig.runner);
    rig.swapper.check_invariants(rig.kv);
    const auto logits = rig.step(seq, std::span(&next, 1));
    for (float v : logits) ASSERT_TRUE(std::isfinite(v));
    next = testing::argmax(logits);
  }
  rig.settle();
  EXPECT_EQ(rig.runner.layer(0).precision(), DType::Q4_0);
}

// Runs the same request through two rigs, one whose small base pool puts the request's blocks in
// a swapped layer's segment (so restoring that layer migrates them) and one with room to spare
// (no migration): the logits must be identical, bit for bit.
TEST(LayerSwapper, ARestoreMigratesLiveBlocksWithoutChangingAnyOutput) {
  auto run = [](int64_t base_blocks, int64_t* migrated) {
    SwapRig rig(base_blocks);
    rig.swap(0, DType::Q4_0);
    SequenceKv seq;
    const auto tokens = prompt(100);  // 7 blocks: with a base of 4, three land in layer 0's segment
    std::vector<std::vector<float>> outputs;
    outputs.push_back(rig.step(seq, tokens));
    rig.swap(1, DType::Q4_0);  // somewhere for the blocks to go
    EXPECT_TRUE(rig.swapper.start(0, DType::F16, rig.kv));
    const auto done = rig.settle();
    *migrated = done.empty() ? -1 : done.back().blocks_migrated;
    int32_t next = testing::argmax(outputs.back());
    for (int i = 0; i < 24; ++i) {
      outputs.push_back(rig.step(seq, std::span(&next, 1)));
      next = testing::argmax(outputs.back());
    }
    seq.release_all(rig.kv);
    return outputs;
  };
  int64_t migrated_small = 0, migrated_large = 0;
  const auto small = run(4, &migrated_small);
  const auto large = run(64, &migrated_large);
  EXPECT_EQ(migrated_small, 3);
  EXPECT_EQ(migrated_large, 0);
  ASSERT_EQ(small.size(), large.size());
  for (size_t i = 0; i < small.size(); ++i) EXPECT_EQ(small[i], large[i]) << "output " << i;
}

TEST(LayerSwapper, ARestoreWithNoRoomWaitsAndDropsNothing) {
  SwapRig rig(2);
  rig.swap(0, DType::Q4_0);
  const int64_t capacity = rig.kv.capacity_blocks();
  SequenceKv seq;
  ASSERT_TRUE(seq.reserve(rig.kv, capacity * 16));  // every block, segment included
  const std::vector<int32_t> held = seq.blocks;
  ASSERT_TRUE(rig.swapper.start(0, DType::F16, rig.kv));
  for (int i = 0; i < 200; ++i) {
    rig.swapper.advance(rig.kv, rig.runner);
    rig.swapper.check_invariants(rig.kv);
  }
  EXPECT_EQ(rig.swapper.in_flight(), 1);
  EXPECT_EQ(rig.swapper.precision(0), DType::Q4_0);
  EXPECT_EQ(seq.blocks, held);  // not migrated, not dropped
  // Half the blocks leave: the rest moves out of the segment and the restore completes.
  SequenceKv keep;
  seq.release_all(rig.kv);
  ASSERT_TRUE(keep.reserve(rig.kv, 16));
  const auto done = rig.settle();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(rig.swapper.precision(0), DType::F16);
  EXPECT_EQ(rig.kv.capacity_blocks(), 2);
}

TEST(LayerSwapper, AnAbortedRestoreLendsEverythingBackAndKeepsThePrecision) {
  SwapRig rig(2);
  rig.swap(0, DType::Q4_0);
  rig.swap(0, DType::Q8_0);
  rig.swap(0, DType::Q4_0);  // two segments
  const int64_t capacity = rig.kv.capacity_blocks();
  SequenceKv seq;
  ASSERT_TRUE(seq.reserve(rig.kv, capacity * 16));
  ASSERT_TRUE(rig.swapper.start(0, DType::F16, rig.kv));
  for (int i = 0; i < 50; ++i) rig.swapper.advance(rig.kv, rig.runner);
  EXPECT_EQ(rig.kv.free_blocks(), 0);
  bool aborted = false;
  for (int i = 0; i < 10000 && !aborted; ++i) {
    aborted = rig.swapper.abort_restore(0, rig.kv, rig.runner);
    if (!aborted) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  ASSERT_TRUE(aborted);
  rig.swapper.check_invariants(rig.kv);
  EXPECT_EQ(rig.swapper.in_flight(), 0);
  EXPECT_EQ(rig.swapper.precision(0), DType::Q4_0);
  EXPECT_EQ(rig.runner.layer(0).precision(), DType::Q4_0);
  EXPECT_EQ(rig.kv.capacity_blocks(), capacity);
  seq.release_all(rig.kv);
  EXPECT_EQ(rig.kv.free_blocks(), capacity);  // every segment allocates again
}

TEST(LayerSwapper, StartRefusesWhatItCannotDo) {
  SwapRig rig(4);
  EXPECT_FALSE(rig.swapper.start(0, DType::F16, rig.kv));  // already there
  EXPECT_THROW(rig.swapper.start(0, DType::BF16, rig.kv), InvalidArgument);
  EXPECT_THROW(rig.swapper.start(9, DType::Q4_0, rig.kv), InvalidArgument);
  ASSERT_TRUE(rig.swapper.start(0, DType::Q4_0, rig.kv));
  EXPECT_FALSE(rig.swapper.start(0, DType::Q8_0, rig.kv));  // busy
  EXPECT_FALSE(rig.swapper.start(1, DType::Q4_0, rig.kv));  // the only staging slot is taken
  rig.settle();
  EXPECT_TRUE(rig.swapper.start(1, DType::Q4_0, rig.kv));
  rig.settle();
}

TEST(LayerSwapper, TakingTheWeightsCarriesOneLayerTwiceAtMostOrIsRefusedWithTheModelWhole) {
  ThreadPool pool(2);
  const LlamaModel reference = make_dummy_model("tiny", DType::F16, test_backend());
  auto store = ReplicaStore::in_memory(reference, pool);
  const size_t staging = LayerSwapper::staging_bytes_for(*store, 2);
  const size_t regions = LayerSwapper::region_bytes_for(*store);
  size_t linears = 0;
  size_t largest_region = 0;
  for (int l = 0; l < store->n_layers(); ++l) {
    linears += reference.weights.layers[static_cast<size_t>(l)].linear_bytes();
    largest_region = std::max(largest_region, PackedLayer::of(store->replica(l, DType::F16)).bytes);
  }
  size_t peak = 0;
  {
    // As serve builds it: the weights are loaded through the backend, then the swapper takes them.
    MemoryBudget budget(size_t{1} << 30);
    CpuBackend backend(budget, pool);
    LlamaModel model = make_dummy_model("tiny", DType::F16, backend);
    const size_t weights = budget.held(WeightMatrix::kAccount);
    LayerSwapper swapper(*store, 2, backend);
    EXPECT_EQ(budget.held(kStagingAccount), staging);
    EXPECT_EQ(budget.held(kRegionAccount), 0u);  // the regions come with the weights
    swapper.take_weights(model);
    EXPECT_EQ(budget.held(kRegionAccount), regions);
    EXPECT_EQ(budget.held(WeightMatrix::kAccount), weights - linears);
    for (const LayerWeights& layer : model.weights.layers) EXPECT_EQ(layer.linear_bytes(), 0u);
    peak = budget.peak();
    EXPECT_LE(peak, budget.used() + largest_region);
    EXPECT_LT(peak, weights + staging + regions);  // never the whole model twice
  }
  MemoryBudget small(peak - 1);
  CpuBackend small_backend(small, pool);
  LlamaModel model = make_dummy_model("tiny", DType::F16, small_backend);
  const size_t held = small.used();
  LayerSwapper swapper(*store, 2, small_backend);
  EXPECT_THROW(swapper.take_weights(model), OutOfBudget);
  EXPECT_EQ(small.held(kRegionAccount), 0u);  // nothing moved: the model is whole
  EXPECT_EQ(small.used(), held + staging);
  for (size_t l = 0; l < model.weights.layers.size(); ++l) {
    EXPECT_EQ(model.weights.layers[l].linear_bytes(), reference.weights.layers[l].linear_bytes());
  }
}

TEST(LayerSwapper, AttachFreesTheModelsOwnLayerCopies) {
  SwapRig rig(4);
  for (const LayerWeights& layer : rig.model.weights.layers) EXPECT_EQ(layer.linear_bytes(), 0u);
  EXPECT_EQ(rig.budget.held(kRegionAccount), LayerSwapper::region_bytes_for(*rig.store));
}

}  // namespace
}  // namespace morphserve
