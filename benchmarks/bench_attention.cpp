// Paged attention decode and the element-wise kernels, per instruction set.
//
// Attention: one decode query (32 heads, 8 kv heads) over 512 or 2048 keys in 16-token blocks. The
// kernel reads K and V once, so its speed is reported as KV bytes read per second and as a share of
// the DRAM read bandwidth measured in the same run. Each iteration attends over the next of several
// layers' caches (>= 256 MiB in all, as a forward pass does), so the KV comes from DRAM, not cache.
//
//   build-elem/benchmarks/bench_attention                          # everything
//   build-elem/benchmarks/bench_attention --benchmark_filter=Attention/.*/1/2
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/aligned_buffer.h"
#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/cpu_features.h"
#include "kernels/kv_write.h"
#include "kernels/norm.h"
#include "kernels/rope.h"
#include "kernels/softmax.h"
#include "kernels/thread_pool.h"
#include "memory_bandwidth.h"

namespace morphserve {
namespace {

using bench::bandwidth;
using bench::shared_pool;

constexpr int kHeads = 32;
constexpr int kKvHeads = 8;
constexpr int kBlockSize = 16;
constexpr size_t kColdBytes = size_t{256} << 20;

// One layer's KV for one sequence, every block a separate allocation.
struct LayerKv {
  std::vector<AlignedBuffer> k, v;
  std::vector<const std::byte*> k_ptrs, v_ptrs;
};

bool skip_unsupported(benchmark::State& state, Isa isa) {
  if (cpu_supports(isa)) return false;
  state.SkipWithError(("this CPU lacks " + std::string(isa_name(isa))).c_str());
  return true;
}

void BM_AttentionDecode(benchmark::State& state) {
  const int64_t n_keys = state.range(0);
  const int head_dim = static_cast<int>(state.range(1));
  const DType type = state.range(2) ? DType::F16 : DType::F32;
  const Isa isa = static_cast<Isa>(state.range(3));
  if (skip_unsupported(state, isa)) return;
  const int64_t row = int64_t{kKvHeads} * head_dim;
  const size_t elem = type == DType::F16 ? 2 : 4;
  const size_t kv_bytes = static_cast<size_t>(n_keys * row) * elem * 2;
  const int n_layers = static_cast<int>(std::clamp<size_t>(kColdBytes / kv_bytes, 1, 512));
  const int64_t n_blocks = (n_keys + kBlockSize - 1) / kBlockSize;

  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> token(static_cast<size_t>(row));
  std::vector<LayerKv> layers(static_cast<size_t>(n_layers));
  for (LayerKv& layer : layers) {
    for (int64_t b = 0; b < n_blocks; ++b) {
      for (auto* side : {&layer.k, &layer.v}) {
        side->emplace_back(static_cast<size_t>(kBlockSize * row) * elem);
        for (int j = 0; j < kBlockSize; ++j) {
          for (float& x : token) x = dist(rng);
          kv_store_row(type, token.data(), side->back().data() + j * row * elem, row);
        }
      }
      layer.k_ptrs.push_back(layer.k.back().data());
      layer.v_ptrs.push_back(layer.v.back().data());
    }
  }
  std::vector<float> q(static_cast<size_t>(kHeads) * head_dim), out(q.size());
  for (float& x : q) x = dist(rng);
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));

  size_t layer = 0;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    KvBlocks kv;
    kv.type = type;
    kv.k_blocks = layers[layer].k_ptrs.data();
    kv.v_blocks = layers[layer].v_ptrs.data();
    kv.block_size = kBlockSize;
    kv.n_kv_heads = kKvHeads;
    kv.head_dim = head_dim;
    attention_with_isa(isa, q.data(), 1, n_keys - 1, kHeads, kv, scale, out.data(), shared_pool());
    benchmark::DoNotOptimize(out.data());
    layer = (layer + 1) % layers.size();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double bytes = static_cast<double>(kv_bytes) * static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.counters["KV_MB"] = static_cast<double>(kv_bytes) / 1e6;
  state.counters["roofline"] = bytes / seconds / bandwidth();
  state.SetLabel(std::string(isa_name(isa)) + " " + (type == DType::F16 ? "f16" : "f32") + " kv");
}

void attention_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"keys", "head_dim", "f16", "isa"});
  for (const int isa : {0, 1, 2}) {
    for (const int f16 : {1, 0}) {
      for (const int head_dim : {64, 128}) {
        for (const int keys : {512, 2048}) b->Args({keys, head_dim, f16, isa});
      }
    }
  }
  b->UseRealTime();
}

BENCHMARK(BM_AttentionDecode)->Apply(attention_args);

// Element-wise kernels on one row (hot in cache): bytes/s counts every float read and written.
std::vector<float> random_row(int64_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

void BM_RmsNorm(benchmark::State& state) {
  const int64_t n = state.range(0);
  const Isa isa = static_cast<Isa>(state.range(1));
  if (skip_unsupported(state, isa)) return;
  const auto x = random_row(n, 1, -2.0f, 2.0f);
  const auto w = random_row(n, 2, 0.5f, 1.5f);
  std::vector<float> out(static_cast<size_t>(n));
  for (auto _ : state) {
    rms_norm_with_isa(isa, x.data(), w.data(), out.data(), 1, n, 1e-5f);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * n * 3 * 4);
  state.SetItemsProcessed(state.iterations() * n);
  state.SetLabel(std::string(isa_name(isa)));
}

void BM_SiluMul(benchmark::State& state) {
  const int64_t n = state.range(0);
  const Isa isa = static_cast<Isa>(state.range(1));
  if (skip_unsupported(state, isa)) return;
  const auto gate = random_row(n, 3, -8.0f, 8.0f);
  const auto up = random_row(n, 4, -2.0f, 2.0f);
  std::vector<float> out(static_cast<size_t>(n));
  for (auto _ : state) {
    silu_mul_with_isa(isa, gate.data(), up.data(), out.data(), n);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * n * 3 * 4);
  state.SetItemsProcessed(state.iterations() * n);
  state.SetLabel(std::string(isa_name(isa)));
}

void BM_Softmax(benchmark::State& state) {
  const int64_t n = state.range(0);
  const Isa isa = static_cast<Isa>(state.range(1));
  if (skip_unsupported(state, isa)) return;
  const auto logits = random_row(n, 5, -20.0f, 20.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto _ : state) {
    std::copy(logits.begin(), logits.end(), x.begin());  // softmax is in place; keep inputs fixed
    softmax_with_isa(isa, x.data(), n);
    benchmark::DoNotOptimize(x.data());
  }
  state.SetBytesProcessed(state.iterations() * n * 2 * 4);
  state.SetItemsProcessed(state.iterations() * n);
  state.SetLabel(std::string(isa_name(isa)));
}

// RoPE is scalar (double angles); this shows it is a negligible share of a decode step: one token's
// queries (32 heads x 128) per call.
void BM_Rope(benchmark::State& state) {
  const int n_heads = 32, head_dim = 128;
  auto x = random_row(int64_t{n_heads} * head_dim, 6, -2.0f, 2.0f);
  RopeParams params;
  params.head_dim = head_dim;
  int32_t position = 1000;
  for (auto _ : state) {
    rope(x.data(), 1, n_heads, &position, params);
    benchmark::DoNotOptimize(x.data());
    position = position < 4000 ? position + 1 : 1000;
  }
  state.SetItemsProcessed(state.iterations() * n_heads);
}

// Llama-7B-like widths: hidden 4096, MLP 11008, vocabulary 32000.
BENCHMARK(BM_RmsNorm)->ArgNames({"n", "isa"})->ArgsProduct({{4096}, {0, 1, 2}});
BENCHMARK(BM_SiluMul)->ArgNames({"n", "isa"})->ArgsProduct({{11008}, {0, 1, 2}});
BENCHMARK(BM_Softmax)->ArgNames({"n", "isa"})->ArgsProduct({{32000}, {0, 1, 2}});
BENCHMARK(BM_Rope);

}  // namespace
}  // namespace morphserve

BENCHMARK_MAIN();
