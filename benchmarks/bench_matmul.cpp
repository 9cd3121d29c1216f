// matmul speed per weight format × token count × shape × instruction set, reported against the
// DRAM read bandwidth measured at start-up in the same run.
//
// Counters: bytes_per_second = weight bytes streamed per second, FLOP/s = 2·rows·cols·tokens per
// second, roofline = bytes_per_second ÷ measured bandwidth (decode's ideal is 1.0).
// Decode is memory-bound only if the weights come from DRAM: a 2048×2048 Q4_0 matrix (2.4 MB)
// would stay in the 36 MB L3 if the same copy were reused, so each benchmark cycles through
// enough copies of its matrix to span at least 256 MiB, as a model's layers do.
//
// Flags: the usual Google Benchmark ones, e.g.
//   bench_matmul --benchmark_filter='q4_0/2048x2048/t1/' --benchmark_min_time=0.2
// MORPHSERVE_BENCH_THREADS=N sets the pool size (default: all cores).
// MORPHSERVE_BENCH_WEIGHT_SPAN_MB=N sets how many MiB the copies span (default 256); 0 reuses one
// copy, which a 2048-column matrix keeps in cache: the kernel's compute ceiling, to tell a
// compute-bound kernel from a memory-bound one.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/aligned_buffer.h"
#include "kernels/convert.h"
#include "kernels/cpu_features.h"
#include "kernels/matmul.h"
#include "kernels/thread_pool.h"
#include "memory_bandwidth.h"

namespace morphserve {
namespace {

ThreadPool* g_pool = nullptr;
double g_bandwidth = 0.0;  // bytes/s
size_t g_weight_span = size_t{256} << 20;

struct Shape {
  int64_t rows, cols;
};

// Copies of one random matrix, together at least g_weight_span bytes, all resident before timing.
struct WeightSet {
  DType type;
  Shape shape;
  size_t bytes;
  std::vector<AlignedBuffer> copies;

  WeightSet(DType t, Shape s) : type(t), shape(s), bytes(dtype_row_bytes(t, s.cols) * static_cast<size_t>(s.rows)) {
    AlignedBuffer first(bytes);
    std::mt19937 rng(42);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<float> row(static_cast<size_t>(s.cols));
    const size_t row_bytes = dtype_row_bytes(t, s.cols);
    for (int64_t r = 0; r < s.rows; ++r) {
      for (auto& v : row) v = dist(rng);
      convert_row_from_f32(t, row.data(), first.data() + row_bytes * static_cast<size_t>(r), s.cols);
    }
    const size_t n_copies = std::max<size_t>(1, (g_weight_span + bytes - 1) / bytes);
    copies.push_back(std::move(first));
    for (size_t i = 1; i < n_copies; ++i) {
      AlignedBuffer copy(bytes);
      std::memcpy(copy.data(), copies.front().data(), bytes);
      copies.push_back(std::move(copy));
    }
  }
  MatrixView view(size_t i) const { return {type, copies[i % copies.size()].data(), shape.rows, shape.cols}; }
};

// Google Benchmark calls a benchmark function several times while it sizes the iteration count;
// the last matrix set is kept (one at a time, they are large) so it is built once per benchmark.
const WeightSet& weight_set(DType type, Shape shape) {
  static std::unique_ptr<WeightSet> cached;
  if (!cached || cached->type != type || cached->shape.rows != shape.rows || cached->shape.cols != shape.cols) {
    cached.reset();
    cached = std::make_unique<WeightSet>(type, shape);
  }
  return *cached;
}

void bm_matmul(benchmark::State& state, DType type, Shape shape, int64_t tokens, Isa isa) {
  if (!cpu_supports(isa)) {
    state.SkipWithError("instruction set not supported by this CPU");
    return;
  }
  const WeightSet& weights = weight_set(type, shape);
  std::vector<float> x(static_cast<size_t>(tokens * shape.cols));
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (auto& v : x) v = dist(rng);
  std::vector<float> y(static_cast<size_t>(tokens * shape.rows));
  size_t i = 0;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    matmul_with_isa(isa, weights.view(i++), x.data(), tokens, y.data(), *g_pool);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double iterations = static_cast<double>(state.iterations());
  state.counters["bytes_per_second"] =
      benchmark::Counter(static_cast<double>(weights.bytes) * iterations, benchmark::Counter::kIsRate);
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(shape.rows * shape.cols * tokens) * iterations,
                                                benchmark::Counter::kIsRate);
  // Achieved weight bandwidth ÷ the bandwidth measured at start-up (a plain ratio, 1.0 = roofline).
  state.counters["roofline"] = static_cast<double>(weights.bytes) * iterations / seconds / g_bandwidth;
}

void register_all() {
  const DType types[] = {DType::F16,  DType::Q8_0, DType::Q4_0, DType::Q4_K,
                         DType::Q5_K, DType::Q6_K, DType::BF16, DType::F32};
  const Shape shapes[] = {{2048, 2048}, {5632, 2048}, {2048, 5632}, {32000, 2048}};
  const int64_t token_counts[] = {1, 4, 8, 16, 128};
  const Isa isas[] = {Isa::Avx512, Isa::Avx2, Isa::Scalar};
  for (DType type : types) {
    for (const Shape& shape : shapes) {
      for (int64_t tokens : token_counts) {
        for (Isa isa : isas) {
          // The scalar reference only at decode on the smallest shape: it exists for correctness.
          if (isa == Isa::Scalar && (tokens != 1 || shape.rows != 2048 || shape.cols != 2048)) continue;
          const std::string name = "matmul/" + std::string(dtype_name(type)) + "/" + std::to_string(shape.rows) + "x" +
                                   std::to_string(shape.cols) + "/t" + std::to_string(tokens) + "/" +
                                   std::string(isa_name(isa));
          benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& s) { bm_matmul(s, type, shape, tokens, isa); })
              ->Unit(benchmark::kMicrosecond)
              ->UseRealTime();
        }
      }
    }
  }
}

}  // namespace
}  // namespace morphserve

int main(int argc, char** argv) {
  using namespace morphserve;
  int threads = 0;
  if (const char* env = std::getenv("MORPHSERVE_BENCH_THREADS"); env && *env) threads = std::atoi(env);
  if (const char* env = std::getenv("MORPHSERVE_BENCH_WEIGHT_SPAN_MB"); env && *env) {
    g_weight_span = static_cast<size_t>(std::max(0, std::atoi(env))) << 20;
  }
  ThreadPool pool(threads);
  g_pool = &pool;
  g_bandwidth = bench::measure_read_bandwidth(pool);
  std::printf("threads: %d, measured DRAM read bandwidth: %.2f GB/s, kernels: up to %s\n", pool.size(),
              g_bandwidth / 1e9, std::string(isa_name(cpu_max_isa())).c_str());
  benchmark::AddCustomContext("threads", std::to_string(pool.size()));
  benchmark::AddCustomContext("read_bandwidth_GBps", std::to_string(g_bandwidth / 1e9));
  benchmark::AddCustomContext("weight_span_MiB", std::to_string(g_weight_span >> 20));
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
