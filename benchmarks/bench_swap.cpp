// What a layer swap costs: how long one takes (start to final flip), and what it does to the
// decode iterations running meanwhile. The swapper never makes an iteration wait on a copy (copies
// run on its worker; boundaries only flip pointers and migrate blocks), so the cost that remains
// is contention: the worker's memcpy shares cores and memory bandwidth with the forward pass.
//
//   build/benchmarks/bench_swap                         # small and 1b, f16 <-> w4
//   build/benchmarks/bench_swap --benchmark_filter=1b
//
// Counters: swap_ms (mean over the run, down and up), boundary_ms_max (the longest a boundary
// spent in advance(): flips, attaches, migrations), iter_ms (median decode iteration without a
// swap in flight), iter_ms_swapping (median while one is), stall (the ratio of the two medians)
// and iter_ms_swapping_max.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/memory_budget.h"
#include "engine/kv_block_pool.h"
#include "engine/llama_runner.h"
#include "engine/model_loader.h"
#include "kernels/thread_pool.h"
#include "memory_bandwidth.h"
#include "backend/cpu_backend.h"
#include "morph/layer_swapper.h"
#include "morph/replica_store.h"

namespace morphserve {
namespace {

using bench::shared_pool;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

// A batch of `batch` sequences decodes continuously; layer after layer swaps to W4 and back, the
// next swap starting as soon as the previous one finishes; every iteration is timed and filed
// under "swapping" or not.
void bench_decode_while_swapping(benchmark::State& state, const std::string& shape, int batch) {
  ThreadPool& pool = shared_pool();
  MemoryBudget budget(size_t{64} << 30);
  CpuBackend backend(budget, pool);
  LlamaModel model = load_model("dummy:" + shape, "", pool, backend);
  auto store = ReplicaStore::in_memory(model, pool);
  constexpr int64_t kContext = 256;
  KvBlockPool kv(KvLayout{model.config.n_layers, 16, model.config.kv_dim(), DType::F16}, batch * kContext / 16 + 1, backend);
  LlamaRunner runner(model, kv, backend, std::max(64, batch));
  LayerSwapper swapper(*store, 1, backend);
  swapper.attach(model, runner);

  std::vector<SequenceKv> seqs(static_cast<size_t>(batch));
  std::vector<int32_t> prompt(32);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>(3 + i * 7);
  for (SequenceKv& seq : seqs) {
    seq.reserve(kv, kContext);
    const BatchSequence prefill{prompt, 0, &seq.blocks, false};
    runner.forward(std::span(&prefill, 1));
  }
  std::vector<int32_t> tokens(static_cast<size_t>(batch), 100);
  std::vector<BatchSequence> step(static_cast<size_t>(batch));
  int64_t pos = 32;

  std::vector<double> quiet, swapping, swap_ms;
  double boundary_max = 0.0;
  int layer = 0;
  bool going_down = true;
  Clock::time_point swap_started;
  int iteration = 0;
  for (auto _ : state) {
    // Every other stretch of 20 iterations runs without swaps, for the baseline.
    const bool swap_phase = (iteration / 20) % 2 == 1;
    const auto boundary = Clock::now();
    for (const SwapRecord& r : swapper.advance(kv, runner)) swap_ms.push_back(r.seconds * 1e3);
    if (swap_phase && swapper.in_flight() == 0) {
      const DType target = going_down ? DType::Q4_0 : store->full_precision(layer);
      swapper.start(layer, target, kv);
      swap_started = Clock::now();
      if (!going_down) layer = (layer + 1) % swapper.n_layers();
      going_down = !going_down;
    }
    boundary_max = std::max(boundary_max, ms_since(boundary));
    const bool in_flight = swapper.in_flight() > 0;
    for (int b = 0; b < batch; ++b) {
      step[static_cast<size_t>(b)] =
          BatchSequence{std::span(&tokens[static_cast<size_t>(b)], 1), pos, &seqs[static_cast<size_t>(b)].blocks, false};
    }
    const auto t = Clock::now();
    const auto logits = runner.forward(step);
    benchmark::DoNotOptimize(logits.data());
    (in_flight ? swapping : quiet).push_back(ms_since(t));
    pos = pos + 1 < kContext ? pos + 1 : 32;
    ++iteration;
  }
  swapper.wait_idle();
  double mean_swap = 0.0;
  for (double v : swap_ms) mean_swap += v;
  state.counters["swaps"] = static_cast<double>(swap_ms.size());
  state.counters["swap_ms"] = swap_ms.empty() ? 0.0 : mean_swap / static_cast<double>(swap_ms.size());
  state.counters["boundary_ms_max"] = boundary_max;
  state.counters["iter_ms"] = median(quiet);
  state.counters["iter_ms_swapping"] = median(swapping);
  state.counters["iter_ms_swapping_max"] = swapping.empty() ? 0.0 : *std::max_element(swapping.begin(), swapping.end());
  state.counters["stall"] = median(quiet) > 0 ? median(swapping) / median(quiet) : 0.0;
  state.counters["layer_MB"] = static_cast<double>(LayerSwapper::region_bytes_for(*store)) / swapper.n_layers() / 1e6;
}

void register_all() {
  for (const char* shape : {"small", "1b"}) {
    for (int batch : {1, 8}) {
      benchmark::RegisterBenchmark(("decode_while_swapping/" + std::string(shape) + "/" + std::to_string(batch)).c_str(),
                                   [shape = std::string(shape), batch](benchmark::State& state) {
                                     bench_decode_while_swapping(state, shape, batch);
                                   })
          ->Unit(benchmark::kMillisecond)
          ->Iterations(std::string(shape) == "1b" ? 200 : 400)
          ->UseRealTime();
    }
  }
}

}  // namespace
}  // namespace morphserve

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  morphserve::register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
