// AVX-512 paged attention: attention_impl.h instantiated with 16-lane zmm traits for head_dim up
// to 256 (1..16 vectors). The last vector of a head is a masked load/store, and F16 caches are
// widened with VCVTPH2PS.
#include "kernels/avx512/exp.h"  // first: it includes <immintrin.h> under a GCC 12 workaround

#include "kernels/attention_impl.h"
#include "kernels/elementwise_impl.h"

namespace morphserve::kernel_impl::avx512 {
namespace {

struct Simd {
  using Vec = __m512;
  static constexpr int kLanes = 16;
  static __mmask16 tail(int valid) { return valid >= 16 ? __mmask16(0xffff) : __mmask16((1u << valid) - 1); }
  static Vec zero() { return _mm512_setzero_ps(); }
  static Vec set1(float x) { return _mm512_set1_ps(x); }
  static Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
  static Vec sub(Vec a, Vec b) { return _mm512_sub_ps(a, b); }
  static Vec mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
  static Vec max(Vec a, Vec b) { return _mm512_max_ps(a, b); }
  static Vec fmadd(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
  static Vec exp(Vec x) { return exp_ps(x); }
  static Vec load(const float* p) { return _mm512_loadu_ps(p); }
  static Vec load_tail(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
  static void storeu(float* p, Vec v) { _mm512_storeu_ps(p, v); }
  static void store_tail(float* p, __mmask16 m, Vec v) { _mm512_mask_storeu_ps(p, m, v); }
  static float reduce_add(Vec v) { return _mm512_reduce_add_ps(v); }
  static float reduce_max(Vec v) { return _mm512_reduce_max_ps(v); }
  // out[i] = horizontal sum of d_i: fold each to 256 bits, then hadd-transpose the four.
  static void reduce_add4(Vec d0, Vec d1, Vec d2, Vec d3, float* out) {
    const __m256 a0 = _mm256_add_ps(_mm512_castps512_ps256(d0), _mm512_extractf32x8_ps(d0, 1));
    const __m256 a1 = _mm256_add_ps(_mm512_castps512_ps256(d1), _mm512_extractf32x8_ps(d1, 1));
    const __m256 a2 = _mm256_add_ps(_mm512_castps512_ps256(d2), _mm512_extractf32x8_ps(d2, 1));
    const __m256 a3 = _mm256_add_ps(_mm512_castps512_ps256(d3), _mm512_extractf32x8_ps(d3, 1));
    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
  }
};

struct F32Kv {
  static constexpr int kBytes = 4;
  static __m512 load(const std::byte* row, int c) { return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + c * 16); }
  static __m512 load_tail(const std::byte* row, int c, __mmask16 m) {
    return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(row) + c * 16);
  }
};

struct F16Kv {
  static constexpr int kBytes = 2;
  static __m512 load(const std::byte* row, int c) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + c * 32)));
  }
  static __m512 load_tail(const std::byte* row, int c, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + c * 32));
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
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - i)) - 1);
    const __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_mask_storeu_epi16(dst + 2 * i, m, h);
  }
}

}  // namespace morphserve::kernel_impl::avx512
