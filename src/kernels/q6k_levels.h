#pragma once
// Q6_K levels unpacked for the GEMMs' weight chunks, shared by the AVX2 and AVX-512 quantized GEMMs
// (avx2/matmul_gemm_quant.cpp, avx512/matmul_gemm_kquant.cpp); needs AVX2, which both have.
#include <immintrin.h>

#include <cstdint>

#include "core/dtype.h"

namespace morphserve::matmul_detail {

// One Q6_K super-block's 256 levels (0..63) in k order: per 128-weight half, weights l, l+32, l+64,
// l+96 from ql[l] low, ql[l+32] low, ql[l] high, ql[l+32] high, with qh[l]'s bit pairs 0-1, 2-3,
// 4-5, 6-7 on top. 16-bit shifts are safe: the 0x30 mask drops bits that crossed bytes.
//
// A template over the calling level's Simd traits, not an inline function: an inline function would
// be one symbol for both levels, and the linker could hand the AVX2 caller the AVX-512 build of it.
template <class S>
void unpack_q6k_levels(const BlockQ6_K& block, uint8_t* q) {
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  const __m256i top = _mm256_set1_epi8(0x30);
  for (int h = 0; h < 2; ++h) {
    const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block.ql + 64 * h));
    const __m256i ql1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block.ql + 64 * h + 32));
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block.qh + 32 * h));
    const __m256i parts[4] = {
        _mm256_or_si256(_mm256_and_si256(ql0, nibble), _mm256_and_si256(_mm256_slli_epi16(qh, 4), top)),
        _mm256_or_si256(_mm256_and_si256(ql1, nibble), _mm256_and_si256(_mm256_slli_epi16(qh, 2), top)),
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), nibble), _mm256_and_si256(qh, top)),
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), nibble),
                        _mm256_and_si256(_mm256_srli_epi16(qh, 2), top))};
    for (int i = 0; i < 4; ++i) _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 128 * h + 32 * i), parts[i]);
  }
}

}  // namespace morphserve::matmul_detail
