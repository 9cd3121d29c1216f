// AVX2 paged attention: attention_impl.h instantiated with 8-lane ymm traits for head_dim up to
// 256 (1..32 vectors). F16 caches are widened with VCVTPH2PS. A head_dim that is not a multiple of
// 8 takes a slower partial load for its last vector (no Llama shape has one).
#include <immintrin.h>

#include <cstring>

#include "kernels/attention_impl.h"
#include "kernels/avx2/simd.h"
#include "kernels/elementwise_impl.h"

namespace morphserve::kernel_impl::avx2 {
namespace {

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
