#pragma once
// A dummy model wired to a runner, a KV pool and a layer swapper, as the engine wires them, for
// driving swaps by hand in tests.
#include <chrono>
#include <memory>
#include <span>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "backend/cpu_backend.h"
#include "core/memory_budget.h"
#include "engine/kv_block_pool.h"
#include "engine/llama_runner.h"
#include "kernels/thread_pool.h"
#include "model/dummy_model.h"
#include "morph/layer_swapper.h"
#include "morph/replica_store.h"

namespace morphserve::testing {

struct SwapRig {
  explicit SwapRig(int64_t base_blocks, int staging_slots = 1, int block_size = 16)
      : budget(size_t{1} << 30),
        backend(budget, pool),
        model(make_dummy_model("tiny", DType::F16, backend)),
        store(ReplicaStore::in_memory(model, pool)),
        kv(KvLayout{model.config.n_layers, block_size, model.config.kv_dim(), DType::F16}, base_blocks, backend),
        runner(model, kv, backend, 256),
        swapper(*store, staging_slots, backend) {
    swapper.attach(model, runner);
  }

  // Advances until no swap is in flight (copies run on the swapper's worker), checking the
  // invariants at every boundary. Returns the finished swaps.
  std::vector<SwapRecord> settle() {
    std::vector<SwapRecord> done;
    for (int i = 0; i < 100000 && swapper.in_flight() > 0; ++i) {
      for (SwapRecord& r : swapper.advance(kv, runner)) done.push_back(r);
      swapper.check_invariants(kv);
      if (swapper.in_flight() > 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    EXPECT_EQ(swapper.in_flight(), 0) << "a swap never finished";
    return done;
  }

  // Swaps a layer and waits for it.
  void swap(int layer, DType target) {
    ASSERT_TRUE(swapper.start(layer, target, kv));
    settle();
    ASSERT_EQ(swapper.precision(layer), target);
  }

  // Logits of the last token after running `tokens` at `first_pos` for a sequence's table.
  std::vector<float> step(SequenceKv& seq, std::span<const int32_t> tokens) {
    const int64_t first = seq.n_tokens;
    EXPECT_TRUE(seq.reserve(kv, first + static_cast<int64_t>(tokens.size())));
    const BatchSequence b{tokens, first, &seq.blocks, false};
    const auto logits = runner.forward(std::span(&b, 1));
    seq.n_tokens = first + static_cast<int64_t>(tokens.size());
    return {logits.begin(), logits.end()};
  }

  // Everything resident goes through one backend and its ledger, in the order serve builds them.
  ThreadPool pool{2};
  MemoryBudget budget;
  CpuBackend backend;
  LlamaModel model;
  std::unique_ptr<ReplicaStore> store;
  KvBlockPool kv;
  LlamaRunner runner;
  LayerSwapper swapper;
};

inline int32_t argmax(const std::vector<float>& v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

}  // namespace morphserve::testing
