// AVX-512 paged attention: attention_impl.h instantiated with 16-lane zmm traits for head_dim up
// to 256 (1..16 vectors). The last vector of a head is a masked load/store, and F16 caches are
// widened with VCVTPH2PS.
#include "kernels/avx512/simd.h"  // first: it includes <immintrin.h> under a GCC 12 workaround

#include "kernels/attention_impl.h"
#include "kernels/elementwise_impl.h"

namespace morphserve::kernel_impl::avx512 {
namespace {

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
