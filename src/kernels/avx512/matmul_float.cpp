// AVX-512 matmul for F32 / F16 / BF16 weights in "dot form", used for decode and small batches:
// matmul_float_tile.h over the zmm traits. R=4 rows × T=4 tokens uses 16 accumulators + 4 weights
// + 1 activation of the 32 registers. The column tail is a masked load, so any cols works without
// a scalar loop.
// GCC 12's AVX-512 intrinsics initialise their "undefined" operands from themselves, which
// -Wmaybe-uninitialized flags at every use; the values are never read.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
#include "kernels/avx512/simd.h"  // first: it includes <immintrin.h> under a GCC 12 workaround

#include "kernels/avx512/matmul_avx512.h"
#include "kernels/matmul_float_tile.h"

namespace morphserve::matmul_detail::avx512 {
namespace {

using kernel_impl::avx512::Simd;

struct F32 {
  using Element = float;
  static constexpr bool kMaskedTail = true;
  static __m512 load(const float* p) { return _mm512_loadu_ps(p); }
  static __m512 load_tail(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
};
struct F16 {
  using Element = uint16_t;
  static constexpr bool kMaskedTail = true;
  static __m512 load(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static __m512 load_tail(const uint16_t* p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
};
struct BF16 {
  using Element = uint16_t;
  static constexpr bool kMaskedTail = true;
  static __m512 widen(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
  static __m512 load(const uint16_t* p) { return widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static __m512 load_tail(const uint16_t* p, __mmask16 m) { return widen(_mm256_maskz_loadu_epi16(m, p)); }
};

// An 8-token × 3-row tile (24 accumulators) measured 25-50% slower from 8 tokens up: its
// activations (8 × cols × 4 bytes) no longer fit L1, and from 24 tokens the GEMM kernels take over.
constexpr int kRows = 4;
constexpr int kTokens = 4;

}  // namespace

void compute_float_gemv(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  switch (call.w.type) {
    case DType::F32: float_dot_rows<Simd, F32, kRows, kTokens>(call, row_begin, row_end); break;
    case DType::F16: float_dot_rows<Simd, F16, kRows, kTokens>(call, row_begin, row_end); break;
    case DType::BF16: float_dot_rows<Simd, BF16, kRows, kTokens>(call, row_begin, row_end); break;
    default: break;
  }
}

}  // namespace morphserve::matmul_detail::avx512
