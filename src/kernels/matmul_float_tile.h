#pragma once
// The float-weight (F32 / F16 / BF16) matmul in "dot form" that avx2/matmul_float.cpp and
// avx512/matmul_float.cpp instantiate: a tile of R weight rows × T tokens keeps R·T vector
// accumulators; each weight vector is loaded and widened once for T tokens and each activation
// vector once for R rows, so the weights stream from memory once per token tile. Include only from
// those files: everything is a template over the ISA traits S (kernels/*/simd.h) and a weight
// loader W, so each level's instantiations are its own, compiled with its flags.
//
// W provides Element, load(p) (S::kLanes weights widened to floats) and, when it can read a
// partial vector (kMaskedTail), load_tail(p, S::tail(n)); otherwise the columns past the last whole
// vector are summed one by one with load1(p).
#include <cstdint>

#include <immintrin.h>

#include "kernels/matmul_impl.h"

namespace morphserve::matmul_detail {

// Software prefetch distance along each weight row: the hardware prefetcher stops at 4 KB page
// boundaries. Raised AVX-512 decode from ~78% to ~84% of the measured bandwidth (bench_matmul f16
// t1, 2 threads).
inline constexpr int64_t kFloatTilePrefetchBytes = 4096;

template <class S, class W, int R, int T>
void float_dot_tile(const MatmulCall& call, int64_t r0, int64_t t0) {
  using E = typename W::Element;
  using Vec = typename S::Vec;
  constexpr int L = S::kLanes;
  const int64_t cols = call.w.cols;
  const E* w[R];
  const float* x[T];
  for (int r = 0; r < R; ++r) w[r] = reinterpret_cast<const E*>(call.weight_row(r0 + r));
  for (int t = 0; t < T; ++t) x[t] = call.x + (t0 + t) * cols;
  Vec acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = S::zero();
  int64_t c = 0;
  for (; c + L <= cols; c += L) {
    Vec wv[R];
    if ((c * static_cast<int64_t>(sizeof(E))) % 64 == 0) {  // one prefetch per 64-byte line of each row
      for (int r = 0; r < R; ++r) {
        _mm_prefetch(reinterpret_cast<const char*>(w[r] + c) + kFloatTilePrefetchBytes, _MM_HINT_T0);
      }
    }
    for (int r = 0; r < R; ++r) wv[r] = W::load(w[r] + c);
    for (int t = 0; t < T; ++t) {
      const Vec xv = S::load(x[t] + c);
      for (int r = 0; r < R; ++r) acc[r][t] = S::fmadd(wv[r], xv, acc[r][t]);
    }
  }
  if constexpr (W::kMaskedTail) {
    if (c < cols) {
      const auto tail = S::tail(static_cast<int>(cols - c));
      Vec wv[R];
      for (int r = 0; r < R; ++r) wv[r] = W::load_tail(w[r] + c, tail);
      for (int t = 0; t < T; ++t) {
        const Vec xv = S::load_tail(x[t] + c, tail);
        for (int r = 0; r < R; ++r) acc[r][t] = S::fmadd(wv[r], xv, acc[r][t]);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) call.y[(t0 + t) * call.w.rows + r0 + r] = S::reduce_add(acc[r][t]);
  } else {
    for (int r = 0; r < R; ++r) {
      for (int t = 0; t < T; ++t) {
        float sum = S::reduce_add(acc[r][t]);
        for (int64_t k = c; k < cols; ++k) sum += W::load1(w[r] + k) * x[t][k];
        call.y[(t0 + t) * call.w.rows + r0 + r] = sum;
      }
    }
  }
}

// The `left` (< T) tokens after the whole T-token tiles, as one tile of exactly that many.
template <class S, class W, int R, int T>
void float_dot_token_rest(const MatmulCall& call, int64_t r0, int64_t t0, int64_t left) {
  if constexpr (T > 1) {
    if (left == T - 1) return float_dot_tile<S, W, R, T - 1>(call, r0, t0);
    float_dot_token_rest<S, W, R, T - 1>(call, r0, t0, left);
  }
}

template <class S, class W, int R, int T>
void float_dot_row_tile(const MatmulCall& call, int64_t r0) {
  int64_t t = 0;
  for (; t + T <= call.n_tokens; t += T) float_dot_tile<S, W, R, T>(call, r0, t);
  float_dot_token_rest<S, W, R, T>(call, r0, t, call.n_tokens - t);
}

// y for rows [row_begin, row_end): R-row tiles, then single rows.
template <class S, class W, int R, int T>
void float_dot_rows(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  int64_t r = row_begin;
  for (; r + R <= row_end; r += R) float_dot_row_tile<S, W, R, T>(call, r);
  for (; r < row_end; ++r) float_dot_row_tile<S, W, 1, T>(call, r);
}

}  // namespace morphserve::matmul_detail
