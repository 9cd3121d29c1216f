// AVX2 paged attention: attention_impl.h instantiated with 8-lane ymm traits for head_dim up to
// 256 (1..32 vectors). F16 caches are widened with VCVTPH2PS. A head_dim that is not a multiple of
// 8 takes a slower partial load for its last vector (no Llama shape has one).
#include <immintrin.h>

#include <cstring>

#include "kernels/attention_impl.h"
#include "kernels/avx2/exp.h"
#include "kernels/elementwise_impl.h"

namespace morphserve::kernel_impl::avx2 {
namespace {

struct Simd {
  using Vec = __m256;
  static constexpr int kLanes = 8;
  static int tail(int valid) { return valid; }  // lanes of the last vector, 1..8
  static Vec zero() { return _mm256_setzero_ps(); }
  static Vec set1(float x) { return _mm256_set1_ps(x); }
  static Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
  static Vec sub(Vec a, Vec b) { return _mm256_sub_ps(a, b); }
  static Vec mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
  static Vec max(Vec a, Vec b) { return _mm256_max_ps(a, b); }
  static Vec fmadd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
  static Vec exp(Vec x) { return exp_ps(x); }
  static Vec load(const float* p) { return _mm256_loadu_ps(p); }
  static Vec load_tail(const float* p, int valid) {
    return valid == 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, tail_mask(valid));
  }
  static void store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
  static void storeu(float* p, Vec v) { _mm256_storeu_ps(p, v); }
  static void store_tail(float* p, int valid, Vec v) {
    if (valid == 8) {
      _mm256_storeu_ps(p, v);
    } else {
      _mm256_maskstore_ps(p, tail_mask(valid), v);
    }
  }
  static float reduce_add(Vec v) { return avx2::reduce_add(v); }
  static float reduce_max(Vec v) { return avx2::reduce_max(v); }
  // out[i] = horizontal sum of d_i, the four reductions sharing one hadd transpose.
  static void reduce_add4(Vec d0, Vec d1, Vec d2, Vec d3, float* out) {
    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(d0, d1), _mm256_hadd_ps(d2, d3));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
  }
};

struct F32Kv {
  static constexpr int kBytes = 4;
  static __m256 load(const std::byte* row, int c) { return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + c * 8); }
  static __m256 load_tail(const std::byte* row, int c, int valid) {
    return Simd::load_tail(reinterpret_cast<const float*>(row) + c * 8, valid);
  }
};

struct F16Kv {
  static constexpr int kBytes = 2;
  static __m256 load(const std::byte* row, int c) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + c * 16)));
  }
  static __m256 load_tail(const std::byte* row, int c, int valid) {
    if (valid == 8) return load(row, c);
    uint16_t buf[8] = {};  // no 16-bit masked load before AVX-512BW
    std::memcpy(buf, row + c * 16, static_cast<size_t>(valid) * 2);
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(buf)));
  }
};

constexpr int kMaxChunks = kMaxAttentionHeadDim / Simd::kLanes;
constexpr auto kF32Table = attend_units_table<Simd, F32Kv>(std::make_index_sequence<kMaxChunks>{});
constexpr auto kF16Table = attend_units_table<Simd, F16Kv>(std::make_index_sequence<kMaxChunks>{});

}  // namespace

void attention_units(const AttentionArgs& args, int64_t unit_begin, int64_t unit_end) {
  const int chunks = (args.kv.head_dim + Simd::kLanes - 1) / Simd::kLanes;
  const auto& table = args.kv.type == DType::F16 ? kF16Table : kF32Table;
  table[chunks - 1](args, unit_begin, unit_end);
}

void store_f16(const float* src, std::byte* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 2 * i), h);
  }
  if (i < n) {
    const int left = static_cast<int>(n - i);
    uint16_t buf[8];
    const __m128i h = _mm256_cvtps_ph(_mm256_maskload_ps(src + i, tail_mask(left)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(buf), h);
    std::memcpy(dst + 2 * i, buf, static_cast<size_t>(left) * 2);
  }
}

}  // namespace morphserve::kernel_impl::avx2
