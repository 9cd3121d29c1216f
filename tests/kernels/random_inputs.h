#pragma once
// Inputs the kernel tests share: lengths that hit every SIMD tail, and seeded random vectors.
#include <cstdint>
#include <random>
#include <vector>

namespace morphserve::testing {

// One element, short and odd tails, whole vectors, and a length past every unroll.
inline const std::vector<int64_t> kKernelLengths = {1, 3, 17, 64, 100, 4099};

// n values uniform in [lo, hi).
inline std::vector<float> random_vector(int64_t n, uint32_t seed, float lo = -2.0f, float hi = 2.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

// n activation rows of `cols` standard-normal values.
inline std::vector<float> random_x(int64_t n, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n * cols));
  for (auto& v : x) v = dist(rng);
  return x;
}

}  // namespace morphserve::testing
