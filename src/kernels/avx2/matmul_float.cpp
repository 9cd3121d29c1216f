// AVX2+FMA matmul for F32 / F16 / BF16 weights, "dot form": a tile of R weight rows × T tokens
// keeps R·T vector accumulators, each weight vector is converted once and used for T tokens,
// each activation vector once for R rows. 16 ymm registers fit R=4, T=2 (8 accumulators + 4
// weights + 1 activation). Rows stream from memory once per call per token tile.
#include <immintrin.h>

#include "kernels/matmul_impl.h"

namespace morphserve::matmul_detail::avx2 {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

struct F32 {
  using Element = float;
  static __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
  static float load1(const float* p) { return *p; }
};
struct F16 {
  using Element = uint16_t;
  static __m256 load8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static float load1(const uint16_t* p) { return _cvtsh_ss(*p); }
};
struct BF16 {
  using Element = uint16_t;
  static __m256 load8(const uint16_t* p) {
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
  }
  static float load1(const uint16_t* p) {
    const uint32_t bits = static_cast<uint32_t>(*p) << 16;
    float f;
    __builtin_memcpy(&f, &bits, 4);
    return f;
  }
};

template <typename L, int R, int T>
void tile(const MatmulCall& call, int64_t r0, int64_t t0) {
  using E = typename L::Element;
  const int64_t cols = call.w.cols;
  const E* w[R];
  const float* x[T];
  for (int r = 0; r < R; ++r) w[r] = reinterpret_cast<const E*>(call.weight_row(r0 + r));
  for (int t = 0; t < T; ++t) x[t] = call.x + (t0 + t) * cols;
  __m256 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + 8 <= cols; c += 8) {
    __m256 wv[R];
    if ((c * sizeof(E)) % 64 == 0) {  // every line: the hardware prefetcher stops at 4 KB pages
      for (int r = 0; r < R; ++r) _mm_prefetch(reinterpret_cast<const char*>(w[r] + c) + 4096, _MM_HINT_T0);
    }
    for (int r = 0; r < R; ++r) wv[r] = L::load8(w[r] + c);
    for (int t = 0; t < T; ++t) {
      const __m256 xv = _mm256_loadu_ps(x[t] + c);
      for (int r = 0; r < R; ++r) acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) {
      float sum = hsum(acc[r][t]);
      for (int64_t k = c; k < cols; ++k) sum += L::load1(w[r] + k) * x[t][k];
      call.y[(t0 + t) * call.w.rows + r0 + r] = sum;
    }
  }
}

template <typename L>
void compute_rows(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  constexpr int R = 4;
  constexpr int T = 2;
  int64_t r = row_begin;
  for (; r + R <= row_end; r += R) {
    int64_t t = 0;
    for (; t + T <= call.n_tokens; t += T) tile<L, R, T>(call, r, t);
    for (; t < call.n_tokens; ++t) tile<L, R, 1>(call, r, t);
  }
  for (; r < row_end; ++r) {
    int64_t t = 0;
    for (; t + T <= call.n_tokens; t += T) tile<L, 1, T>(call, r, t);
    for (; t < call.n_tokens; ++t) tile<L, 1, 1>(call, r, t);
  }
}

}  // namespace

void compute_float(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  switch (call.w.type) {
    case DType::F32: compute_rows<F32>(call, row_begin, row_end); break;
    case DType::F16: compute_rows<F16>(call, row_begin, row_end); break;
    case DType::BF16: compute_rows<BF16>(call, row_begin, row_end); break;
    default: break;
  }
}

}  // namespace morphserve::matmul_detail::avx2
