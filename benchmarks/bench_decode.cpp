// Single-sequence decode speed of whole models, as tokens/s and as a share of the DRAM read
// bandwidth measured in the same run: decode reads every weight once per token, so
// (weight bytes per token / time per token) / bandwidth is how close it gets to the roofline.
//
//   build/benchmarks/bench_decode                       # small and 1b at f16, w8, w4
//   build/benchmarks/bench_decode --benchmark_filter=small
//   build/benchmarks/bench_decode --benchmark_filter=batch_decode   # 1, 4, 16, 32 sequences
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "engine/kv_block_pool.h"
#include "engine/llama_runner.h"
#include "engine/model_loader.h"
#include "kernels/cpu_features.h"
#include "kernels/thread_pool.h"
#include "memory_bandwidth.h"

namespace morphserve {
namespace {

using bench::bandwidth;
using bench::shared_pool;

// Weight bytes one decode step reads: every layer's linear matrices and the classifier (the
// embedding contributes one row, negligible).
size_t bytes_per_token(const LlamaModel& model) {
  size_t total = model.weights.classifier().bytes();
  for (const LayerWeights& layer : model.weights.layers) total += layer.linear_bytes();
  return total;
}

// Only one model is resident at a time: the 1b model at f16 alone takes 2.2 GB.
const LlamaModel& cached_model(const std::string& source) {
  static std::string loaded_source;
  static std::unique_ptr<LlamaModel> model;
  if (loaded_source != source) {
    model.reset();
    model = std::make_unique<LlamaModel>(load_model(source, "", shared_pool()));
    loaded_source = source;
  }
  return *model;
}

void bench_decode(benchmark::State& state, const std::string& source) {
  const LlamaModel* model = &cached_model(source);
  constexpr int64_t kContext = 256;
  KvBlockPool kv(KvLayout{model->config.n_layers, 16, model->config.kv_dim(), DType::F16}, kContext / 16);
  LlamaRunner runner(*model, kv, shared_pool(), 64);
  SequenceKv seq;
  seq.reserve(kv, kContext);
  std::vector<int32_t> prompt(64);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>(3 + i * 7);
  const BatchSequence prefill{prompt, 0, &seq.blocks, false};
  runner.forward(std::span(&prefill, 1));

  // Decode positions cycle through 64..255 so attention cost stays typical and bounded.
  int64_t pos = 64;
  int32_t token = 100;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    const BatchSequence step{std::span(&token, 1), pos, &seq.blocks, false};
    const auto logits = runner.forward(std::span(&step, 1));
    benchmark::DoNotOptimize(logits.data());
    token = static_cast<int32_t>(3 + (pos * 13) % 250);
    pos = pos + 1 < kContext ? pos + 1 : 64;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double bytes = static_cast<double>(bytes_per_token(*model));
  const double per_second = static_cast<double>(state.iterations()) / seconds;
  state.counters["tok/s"] = per_second;
  state.counters["GB/s"] = bytes * per_second / 1e9;
  state.counters["roofline"] = bytes * per_second / bandwidth();
  state.counters["MB/token"] = bytes / 1e6;
}

// Continuous-batching decode: `batch` sequences each decode one token per forward pass (what the
// engine runs at steady state). tok/s counts every sequence's token; compare with batch 1.
void bench_batched_decode(benchmark::State& state, const std::string& source, int batch) {
  const LlamaModel* model = &cached_model(source);
  constexpr int64_t kContext = 256;
  KvBlockPool kv(KvLayout{model->config.n_layers, 16, model->config.kv_dim(), DType::F16}, batch * kContext / 16);
  LlamaRunner runner(*model, kv, shared_pool(), std::max(64, batch));
  std::vector<SequenceKv> seqs(static_cast<size_t>(batch));
  std::vector<int32_t> prompt(64);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>(3 + i * 7);
  for (SequenceKv& seq : seqs) {
    seq.reserve(kv, kContext);
    const BatchSequence prefill{prompt, 0, &seq.blocks, false};
    runner.forward(std::span(&prefill, 1));
  }
  std::vector<int32_t> tokens(static_cast<size_t>(batch), 100);
  std::vector<BatchSequence> step(static_cast<size_t>(batch));
  int64_t pos = 64;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    for (int b = 0; b < batch; ++b) {
      step[static_cast<size_t>(b)] = BatchSequence{std::span(&tokens[static_cast<size_t>(b)], 1), pos, &seqs[static_cast<size_t>(b)].blocks, false};
    }
    const auto logits = runner.forward(step);
    benchmark::DoNotOptimize(logits.data());
    pos = pos + 1 < kContext ? pos + 1 : 64;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  state.counters["tok/s"] = static_cast<double>(state.iterations()) * batch / seconds;
  state.counters["batch"] = batch;
}

void register_all() {
  for (const char* format : {"f16", "w4"}) {
    const std::string source = std::string("dummy:small:") + format;
    for (int batch : {1, 4, 16, 32}) {
      benchmark::RegisterBenchmark(("batch_decode/small/" + std::string(format) + "/" + std::to_string(batch)).c_str(),
                                   [source, batch](benchmark::State& state) { bench_batched_decode(state, source, batch); })
          ->Unit(benchmark::kMillisecond)
          ->MinTime(2.0)
          ->UseRealTime();
    }
  }
  for (const char* shape : {"small", "1b"}) {
    for (const char* format : {"f16", "w8", "w4"}) {
      const std::string source = std::string("dummy:") + shape + ":" + format;
      benchmark::RegisterBenchmark(("decode/" + std::string(shape) + "/" + format).c_str(),
                                   [source](benchmark::State& state) { bench_decode(state, source); })
          ->Unit(benchmark::kMillisecond)
          ->MinTime(2.0)
          ->UseRealTime();
    }
  }
}

}  // namespace
}  // namespace morphserve

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  morphserve::register_all();
  std::printf("kernels: %s, threads: %d, measured DRAM read bandwidth: %.1f GB/s\n",
              std::string(morphserve::isa_name(morphserve::active_isa())).c_str(), morphserve::bench::shared_pool().size(),
              morphserve::bench::bandwidth() / 1e9);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
