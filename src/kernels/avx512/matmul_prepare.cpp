// AVX-512 activation quantization: the block quantizer (bit-identical to the scalar reference)
// and the GroupedActs layout the quantized GEMV kernels read.
// GCC 12's AVX-512 intrinsics initialise their "undefined" operands from themselves, which
// -Wmaybe-uninitialized flags at every use; the values are never read.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstring>

#include "kernels/avx512/matmul_avx512.h"

namespace morphserve::matmul_detail::avx512 {

void quantize_act_block(const float* x, int8_t* q, float* d, int32_t* sum) {
  const __m512 v0 = _mm512_loadu_ps(x);
  const __m512 v1 = _mm512_loadu_ps(x + 16);
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
  // The same operations as quantize_act_block_ref: one division, x*id, round to nearest even.
  const __m512 id = _mm512_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
  const __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, id));
  const __m512i i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, id));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtsepi32_epi8(i0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), _mm512_cvtsepi32_epi8(i1));
  *sum = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
  *d = amax / 127.0f;
}

void quantize_act_row(const float* x, int64_t cols, int8_t* qs, float* d, int32_t* sum) {
  for (int64_t b = 0; b < cols / 32; ++b) quantize_act_block(x + b * 32, qs + b * 32, d + b, sum + b);
}

void prepare_quant_gemv(const MatmulCall& call, int64_t token_begin, int64_t token_end) {
  const GroupedActs acts(call.acts, call.w.type, call.n_tokens, call.w.cols);
  const bool q4 = call.w.type == DType::Q4_0;
  const int64_t g_blocks = acts.group_blocks;
  const int64_t pair_blocks = 2 * g_blocks;
  const int64_t lanes_per_block = 16 / g_blocks;
  const int32_t offset = q4 ? 8 : 128;
  const int64_t nb = call.w.cols / 32;
  for (int64_t t = token_begin; t < token_end; ++t) {
    int8_t* qs = acts.qs(t);
    float* dvec = acts.dvec(t);
    int32_t* cvec = acts.cvec(t);
    std::memset(qs, 0, static_cast<size_t>(acts.token_bytes));  // padding blocks must be zero
    const float* x = call.x + t * call.w.cols;
    for (int64_t b = 0; b < nb; ++b) {
      alignas(16) int8_t q[32];
      float d;
      int32_t s;
      quantize_act_block(x + b * 32, q, &d, &s);
      const int64_t pair = b / pair_blocks;
      const int64_t i = b % pair_blocks;  // block within the pair
      const int64_t side = i / g_blocks;  // 0: group A, 1: group B
      const int64_t k = i % g_blocks;     // block within its group
      int8_t* group = qs + (pair * 2 + side) * acts.group_qs();
      if (q4) {  // weights unpack to [4 low halves | 4 high halves] per group
        std::memcpy(group + k * 16, q, 16);
        std::memcpy(group + 64 + k * 16, q + 16, 16);
      } else {
        std::memcpy(group + k * 32, q, 32);
      }
      cvec[pair * 32 + side * 16 + k * lanes_per_block] = -offset * s;
      for (int lane = 0; lane < 4; ++lane) {
        if (side == 0 && acts.a_block(lane) == i) dvec[pair * 16 + 4 * lane] = dvec[pair * 16 + 4 * lane + 2] = d;
        if (side == 1 && acts.b_block(lane) == i) dvec[pair * 16 + 4 * lane + 1] = dvec[pair * 16 + 4 * lane + 3] = d;
      }
    }
  }
}

}  // namespace morphserve::matmul_detail::avx512
