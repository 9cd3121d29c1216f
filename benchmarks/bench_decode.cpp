// Single-sequence decode speed of whole models, as tokens/s and as a share of the DRAM read
// bandwidth measured in the same run: decode reads every weight once per token, so
// (weight bytes per token / time per token) / bandwidth is how close it gets to the roofline.
//
//   build/benchmarks/bench_decode                       # small and 1b at f16, w8, w4
//   build/benchmarks/bench_decode --benchmark_filter=small
//   build/benchmarks/bench_decode --benchmark_filter=batch_decode   # 1, 4, 16, 32 sequences
//   build/benchmarks/bench_decode --model=M.gguf         # one file: decode, prefill 128/512, batches
//
// --model (repeatable) takes anything -m takes and replaces the built-in dummy set with, per model:
// decode/<name> (what llama-bench calls tg), prefill/<name>/128 and /512 (pp128, pp512: one forward
// pass of that many tokens from position 0) and batch_decode/<name>/4, /16, /32.
// benchmarks/compare_llamacpp.sh runs it beside llama-bench on the same files.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

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
  // The backend first: statics are destroyed in reverse, and the model gives its bytes back to it.
  Backend& backend = bench::shared_backend();
  static std::string loaded_source;
  static std::unique_ptr<LlamaModel> model;
  if (loaded_source != source) {
    model.reset();
    model = std::make_unique<LlamaModel>(load_model(source, "", shared_pool(), backend));
    loaded_source = source;
  }
  return *model;
}

void bench_decode(benchmark::State& state, const std::string& source) {
  const LlamaModel* model = &cached_model(source);
  constexpr int64_t kContext = 256;
  KvBlockPool kv(KvLayout{model->config.n_layers, 16, model->config.kv_dim(), DType::F16}, kContext / 16, bench::shared_backend());
  LlamaRunner runner(*model, kv, bench::shared_backend(), 64);
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
  state.counters["batch"] = 1;
}

// Prompt processing: one forward pass of `tokens` prompt tokens from position 0 (the KV blocks are
// overwritten each iteration, so every pass does the same work as a fresh prefill).
void bench_prefill(benchmark::State& state, const std::string& source, int64_t tokens) {
  const LlamaModel* model = &cached_model(source);
  KvBlockPool kv(KvLayout{model->config.n_layers, 16, model->config.kv_dim(), DType::F16}, (tokens + 15) / 16, bench::shared_backend());
  LlamaRunner runner(*model, kv, bench::shared_backend(), tokens);
  SequenceKv seq;
  seq.reserve(kv, tokens);
  std::vector<int32_t> prompt(static_cast<size_t>(tokens));
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>(3 + (i * 7) % 3000);
  const BatchSequence pass{prompt, 0, &seq.blocks, false};
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    const auto logits = runner.forward(std::span(&pass, 1));
    benchmark::DoNotOptimize(logits.data());
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  state.counters["tok/s"] = static_cast<double>(state.iterations()) * static_cast<double>(tokens) / seconds;
  // The CSV reporter wants every run to carry the same counters; prefill is compute-bound, so its
  // weight-bandwidth figures are left at 0 rather than read as a roofline share.
  state.counters["batch"] = 1;
  state.counters["roofline"] = 0;
  state.counters["GB/s"] = 0;
  state.counters["MB/token"] = static_cast<double>(bytes_per_token(*model)) / 1e6;
}

// Continuous-batching decode: `batch` sequences each decode one token per forward pass (what the
// engine runs at steady state). tok/s counts every sequence's token; compare with batch 1.
void bench_batched_decode(benchmark::State& state, const std::string& source, int batch) {
  const LlamaModel* model = &cached_model(source);
  constexpr int64_t kContext = 256;
  KvBlockPool kv(KvLayout{model->config.n_layers, 16, model->config.kv_dim(), DType::F16}, batch * kContext / 16, bench::shared_backend());
  LlamaRunner runner(*model, kv, bench::shared_backend(), std::max(64, batch));
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
  // Every step still reads each weight once, so the roofline is steps/s × bytes per step.
  const double bytes = static_cast<double>(bytes_per_token(*model));
  state.counters["roofline"] = bytes * static_cast<double>(state.iterations()) / seconds / bandwidth();
  state.counters["GB/s"] = bytes * static_cast<double>(state.iterations()) / seconds / 1e9;
  state.counters["MB/token"] = bytes / 1e6;
}

void register_benchmark(const std::string& name, std::function<void(benchmark::State&)> run) {
  benchmark::RegisterBenchmark(name.c_str(), std::move(run))->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();
}

// The built-in set: dummy shapes at f16, w8, w4.
void register_dummies() {
  for (const char* format : {"f16", "w4"}) {
    const std::string source = std::string("dummy:small:") + format;
    for (int batch : {1, 4, 16, 32}) {
      register_benchmark("batch_decode/small/" + std::string(format) + "/" + std::to_string(batch),
                         [source, batch](benchmark::State& state) { bench_batched_decode(state, source, batch); });
    }
  }
  for (const char* shape : {"small", "1b"}) {
    for (const char* format : {"f16", "w8", "w4"}) {
      const std::string source = std::string("dummy:") + shape + ":" + format;
      register_benchmark("decode/" + std::string(shape) + "/" + format,
                         [source](benchmark::State& state) { bench_decode(state, source); });
    }
  }
}

// One model file (or checkpoint, or dummy spec), named by its stem, in llama-bench's terms.
void register_model(const std::string& source) {
  const std::string name = std::filesystem::path(source).stem().string();
  register_benchmark("decode/" + name, [source](benchmark::State& state) { bench_decode(state, source); });
  for (int64_t tokens : {128, 512}) {
    register_benchmark("prefill/" + name + "/" + std::to_string(tokens),
                       [source, tokens](benchmark::State& state) { bench_prefill(state, source, tokens); });
  }
  for (int batch : {4, 16, 32}) {
    register_benchmark("batch_decode/" + name + "/" + std::to_string(batch),
                       [source, batch](benchmark::State& state) { bench_batched_decode(state, source, batch); });
  }
}

// Takes the --model=PATH arguments out of argv (Google Benchmark refuses flags it does not know).
std::vector<std::string> take_model_flags(int& argc, char** argv) {
  std::vector<std::string> models;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.starts_with("--model=")) {
      models.emplace_back(arg.substr(8));
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  return models;
}

}  // namespace
}  // namespace morphserve

int main(int argc, char** argv) {
  const std::vector<std::string> models = morphserve::take_model_flags(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (models.empty()) morphserve::register_dummies();
  for (const std::string& model : models) morphserve::register_model(model);
  std::printf("kernels: %s, threads: %d, measured DRAM read bandwidth: %.1f GB/s\n",
              std::string(morphserve::isa_name(morphserve::active_isa())).c_str(), morphserve::bench::shared_pool().size(),
              morphserve::bench::bandwidth() / 1e9);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
