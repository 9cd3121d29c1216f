// AVX2+FMA matmul for F32 / F16 / BF16 weights: matmul_float_tile.h over the ymm traits. 16 ymm
// registers fit R=4 rows × T=2 tokens (8 accumulators + 4 weights + 1 activation). AVX2 cannot
// load a partial vector of 16-bit weights, so the columns past the last multiple of 8 are summed
// one by one.
#include "kernels/avx2/simd.h"

#include "kernels/matmul_float_tile.h"
#include "kernels/matmul_impl.h"

namespace morphserve::matmul_detail::avx2 {
namespace {

using kernel_impl::avx2::Simd;

struct F32 {
  using Element = float;
  static constexpr bool kMaskedTail = false;
  static __m256 load(const float* p) { return _mm256_loadu_ps(p); }
  static float load1(const float* p) { return *p; }
};
struct F16 {
  using Element = uint16_t;
  static constexpr bool kMaskedTail = false;
  static __m256 load(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static float load1(const uint16_t* p) { return _cvtsh_ss(*p); }
};
struct BF16 {
  using Element = uint16_t;
  static constexpr bool kMaskedTail = false;
  static __m256 load(const uint16_t* p) {
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

constexpr int kRows = 4;
constexpr int kTokens = 2;

}  // namespace

void compute_float(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  switch (call.w.type) {
    case DType::F32: float_dot_rows<Simd, F32, kRows, kTokens>(call, row_begin, row_end); break;
    case DType::F16: float_dot_rows<Simd, F16, kRows, kTokens>(call, row_begin, row_end); break;
    case DType::BF16: float_dot_rows<Simd, BF16, kRows, kTokens>(call, row_begin, row_end); break;
    default: break;
  }
}

}  // namespace morphserve::matmul_detail::avx2
