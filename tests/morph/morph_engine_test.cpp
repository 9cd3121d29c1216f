// Morphing inside the running engine: a request that is mid-decode when layers swap down and back
// up completes, its tokens before the first swap equal the full-precision run's, and a burst on a
// tight budget makes the morph manager quantize layers and grow the KV pool, serve everything,
// then return to full precision and the base capacity.
#include <chrono>
#include <memory>
#include <thread>

#include <gtest/gtest.h>

#include "engine/engine.h"
#include "engine/llama_runner.h"
#include "engine/model_loader.h"
#include "kernels/thread_pool.h"
#include "backend/cpu_backend.h"
#include "morph/layer_swapper.h"
#include "morph/morph_manager.h"
#include "test_data.h"
#include "test_backend.h"

namespace morphserve {
namespace {

using namespace std::chrono_literals;

struct Completion {
  std::vector<int32_t> tokens;
  FinishReason finish = FinishReason::Error;
};

Completion collect(RequestStream& stream, std::chrono::seconds timeout = 120s) {
  Completion c;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  RequestOutput update;
  while (stream.next(update, deadline)) {
    for (const auto& t : update.tokens) c.tokens.push_back(t.token);
    if (update.finish) c.finish = *update.finish;
  }
  EXPECT_TRUE(stream.finished()) << "request " << stream.id() << " did not finish in time";
  return c;
}

RequestParams greedy(std::vector<int32_t> prompt, int64_t max_tokens) {
  RequestParams p;
  p.prompt = std::move(prompt);
  p.max_tokens = max_tokens;
  p.sampling.temperature = 0.0f;
  p.ignore_eos = true;
  return p;
}

// Swaps every layer down to W4 from iteration `down_at`, and back up once all are down and the
// iteration reaches `up_at`; remembers the iteration whose forward pass first ran a swapped layer
// (the swapper flips the runner and its precision together).
class ScriptedSwaps : public IterationHook {
 public:
  ScriptedSwaps(LlamaModel& model, ThreadPool& pool, int64_t down_at, int64_t up_at)
      : model_(model), store_(ReplicaStore::in_memory(model, pool)), budget_(size_t{1} << 30), backend_(budget_, pool),
        swapper_(*store_, 1, backend_), down_at_(down_at), up_at_(up_at) {}

  void attach(KvBlockPool&, LlamaRunner& runner) override { swapper_.attach(model_, runner); }
  bool wants_idle_ticks() const override { return swapper_.in_flight() > 0; }
  void detach(KvBlockPool&, LlamaRunner&) override { swapper_.wait_idle(); }

  void at_iteration_boundary(const PressureSignals& s, KvBlockPool& kv, LlamaRunner& runner) override {
    // Unlike the real manager, wait for the copies: the script must land its swaps at the same
    // iterations on any machine, mid-decode.
    swapper_.wait_idle();
    swapper_.advance(kv, runner);
    swapper_.check_invariants(kv);
    const int n = swapper_.n_layers();
    bool any_quantized = false, all_down = true;
    for (int l = 0; l < n; ++l) {
      any_quantized |= swapper_.precision(l) != store_->full_precision(l);
      all_down &= swapper_.precision(l) == DType::Q4_0;
    }
    if (any_quantized && first_flip_ < 0) first_flip_ = s.iteration;
    if (all_down) reached_bottom_ = true;
    max_capacity_ = std::max(max_capacity_, kv.capacity_blocks());
    if (s.iteration >= down_at_ && !reached_bottom_) {
      for (int l = 0; l < n; ++l) swapper_.start(l, DType::Q4_0, kv);
    } else if (reached_bottom_ && s.iteration >= up_at_) {
      for (int l = 0; l < n; ++l) swapper_.start(l, store_->full_precision(l), kv);
    }
  }

  int64_t first_flip() const { return first_flip_; }
  bool reached_bottom() const { return reached_bottom_; }
  int64_t max_capacity() const { return max_capacity_; }
  const LayerSwapper& swapper() const { return swapper_; }
  DType full_precision(int layer) const { return store_->full_precision(layer); }

 private:
  LlamaModel& model_;
  std::unique_ptr<ReplicaStore> store_;
  MemoryBudget budget_;
  CpuBackend backend_;
  LayerSwapper swapper_;
  int64_t down_at_, up_at_;
  int64_t first_flip_ = -1;
  bool reached_bottom_ = false;
  int64_t max_capacity_ = 0;
};

EngineConfig small_engine(int64_t kv_blocks) {
  EngineConfig c;
  c.kv_blocks = kv_blocks;
  c.scheduler.max_num_batched_tokens = 64;
  c.scheduler.max_num_seqs = 16;
  return c;
}

std::vector<int32_t> prompt_of(size_t n, int32_t salt) {
  std::vector<int32_t> tokens{1};
  for (size_t i = 1; i < n; ++i) tokens.push_back(static_cast<int32_t>(3 + (i * 31 + salt * 7) % 256));
  return tokens;
}

void mid_decode_swap_round_trip(const std::string& source) {
  ThreadPool pool(2);
  const int64_t n_tokens = 120;
  const auto prompt = prompt_of(20, 1);

  LlamaModel reference_model = load_model(source, "", pool, test_backend());
  Completion reference;
  {
    Engine engine(reference_model, small_engine(64), test_backend());
    reference = collect(*engine.submit(greedy(prompt, n_tokens)));
  }
  ASSERT_EQ(reference.tokens.size(), static_cast<size_t>(n_tokens));

  LlamaModel model = load_model(source, "", pool, test_backend());
  ScriptedSwaps hook(model, pool, /*down_at=*/10, /*up_at=*/60);
  EngineConfig config = small_engine(64);
  config.hook = &hook;
  Completion morphed;
  {
    Engine engine(model, config, test_backend());
    morphed = collect(*engine.submit(greedy(prompt, n_tokens)));
    engine.shutdown(true);
  }
  EXPECT_EQ(morphed.finish, FinishReason::Length);
  ASSERT_EQ(morphed.tokens.size(), static_cast<size_t>(n_tokens));
  EXPECT_TRUE(hook.reached_bottom()) << "the layers never all reached W4 during the request";
  ASSERT_GE(hook.first_flip(), 10);
  // Iteration i's pass (the prefill is pass 0) samples token i: every token sampled before the
  // first pass on a swapped layer is the full-precision one.
  const auto unchanged = static_cast<size_t>(hook.first_flip());
  ASSERT_LT(unchanged, morphed.tokens.size());
  EXPECT_EQ(std::vector<int32_t>(morphed.tokens.begin(), morphed.tokens.begin() + static_cast<std::ptrdiff_t>(unchanged)),
            std::vector<int32_t>(reference.tokens.begin(), reference.tokens.begin() + static_cast<std::ptrdiff_t>(unchanged)));
  for (int l = 0; l < hook.swapper().n_layers(); ++l) {
    EXPECT_EQ(hook.swapper().precision(l), hook.full_precision(l)) << l;
  }
  EXPECT_GT(hook.max_capacity(), 64);
}

TEST(MorphEngine, ARequestMidDecodeSurvivesSwapsDownAndBackUp) { mid_decode_swap_round_trip("dummy:tiny"); }

TEST(MorphEngine, Stories260KMidDecodeSurvivesSwapsDownAndBackUp) {
  MORPHSERVE_REQUIRE_DATA(path, "models/stories260K.gguf");
  mid_decode_swap_round_trip(path.string());  // F32 -> Q4_0 -> F32
}

// The real manager on a burst: a KV pool far too small for the load.
TEST(MorphEngine, ABurstQuantizesLayersGrowsTheKvAndReturnsToFullPrecisionAfterwards) {
  ThreadPool pool(2);
  // One backend and ledger for the weights, the manager and the engine, as serve has.
  MemoryBudget budget(size_t{64} << 20);
  CpuBackend backend(budget, pool);
  LlamaModel model = load_model("dummy:tiny", "", pool, backend);
  MorphConfig morph;
  morph.controller = ControllerConfig::preset(MorphMode::Performance);
  morph.controller.hold_seconds = 0.2;
  morph.controller.restore_interval_seconds = 0.05;
  morph.check_invariants = true;
  MorphManager manager(model, ReplicaStore::in_memory(model, pool), morph, backend);
  EngineConfig config = small_engine(16);
  config.hook = &manager;
  config.max_queue = 1000;
  Engine engine(model, config, backend);
  const int64_t base = engine.snapshot().kv_blocks_total;

  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 24; ++i) streams.push_back(engine.submit(greedy(prompt_of(30, i), 100)));
  int64_t peak_capacity = base;
  int peak_quantized = 0;
  std::vector<Completion> results;
  for (auto& s : streams) {
    // Sample the state while requests run.
    const EngineSnapshot snap = engine.snapshot();
    peak_capacity = std::max(peak_capacity, snap.kv_blocks_total);
    const MorphSummary sum = manager.summary();
    peak_quantized = std::max(peak_quantized, sum.layers_w4 + sum.layers_w8);
    results.push_back(collect(*s));
  }
  for (const Completion& c : results) {
    EXPECT_EQ(c.finish, FinishReason::Length);
    EXPECT_EQ(c.tokens.size(), 100u);
  }
  EXPECT_GT(manager.summary().swaps_down, 0u);
  EXPECT_GT(peak_capacity, base);
  EXPECT_GT(peak_quantized, 0);
  // After the burst: every layer back at full precision, capacity at the base.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    const MorphSummary s = manager.summary();
    if (s.layers_w4 + s.layers_w8 == 0 && s.swaps_in_flight == 0 && engine.snapshot().kv_blocks_total == base) break;
    std::this_thread::sleep_for(20ms);
  }
  const MorphSummary after = manager.summary();
  EXPECT_EQ(after.layers_w4 + after.layers_w8, 0);
  EXPECT_EQ(after.swaps_up, after.swaps_down);
  EXPECT_EQ(engine.snapshot().kv_blocks_total, base);
  EXPECT_EQ(engine.snapshot().kv_blocks_used, 0);
  EXPECT_LE(budget.peak(), budget.budget());
  const nlohmann::json status = manager.status();
  for (const auto& layer : status["layers"]) EXPECT_EQ(layer["precision"], "f16");
  engine.shutdown(true);
}

}  // namespace
}  // namespace morphserve
