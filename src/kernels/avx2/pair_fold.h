#pragma once
// Private to the AVX2 dot-form matmuls (matmul_quant.cpp, matmul_kquant.cpp): two blocks' int32
// dot products folded into one vector, so that one convert and one FMA against the two blocks'
// float scales replace one of each per block.
#include <immintrin.h>

#include <cstdint>

namespace morphserve::matmul_detail::avx2 {

// Lanes alternating between a and b (a, b, a, b, ... in each half), each the sum of two of its
// vector's lanes: the horizontal sums of a and b are those of the even and the odd lanes.
inline __m256i fold_pair(__m256i a, __m256i b) {
  return _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
}

// The same from two blocks' maddubs pair sums when four of them still fit int16 (|pair| ≤ 8191:
// Q4_0, Q4_K, Q5_K levels): one hadd and one madd instead of two madds, two unpacks and an add.
// Lanes a, a, b, b in each half.
inline __m256i fold_pair_int16(__m256i a, __m256i b) {
  return _mm256_madd_epi16(_mm256_hadd_epi16(a, b), _mm256_set1_epi16(1));
}

// permutevar8x32 indices that spread lanes 2p and 2p + 1 of a vector of 8 blocks' scales in the
// pattern fold_pair leaves: a compile-time table, since building it from p at run time costs more
// than the FMA it feeds.
struct alignas(32) PairPickIndex {
  int32_t lane[8];
};
inline constexpr PairPickIndex kPairPick[4] = {{{0, 1, 0, 1, 0, 1, 0, 1}},
                                               {{2, 3, 2, 3, 2, 3, 2, 3}},
                                               {{4, 5, 4, 5, 4, 5, 4, 5}},
                                               {{6, 7, 6, 7, 6, 7, 6, 7}}};

inline __m256i pair_pick(int p) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(kPairPick[p].lane)); }

// The same for fold_pair_int16's pattern.
inline constexpr PairPickIndex kPairPickInt16[4] = {{{0, 0, 1, 1, 0, 0, 1, 1}},
                                                    {{2, 2, 3, 3, 2, 2, 3, 3}},
                                                    {{4, 4, 5, 5, 4, 4, 5, 5}},
                                                    {{6, 6, 7, 7, 6, 6, 7, 7}}};

inline __m256i pair_pick_int16(int p) {
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(kPairPickInt16[p].lane));
}

}  // namespace morphserve::matmul_detail::avx2
