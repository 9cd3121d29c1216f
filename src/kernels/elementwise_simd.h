#pragma once
// The row-wise kernels (RMSNorm, SwiGLU, softmax, exp) written once over an ISA traits type S
// (kernels/avx2/simd.h, kernels/avx512/simd.h) and instantiated by each ISA folder's
// elementwise.cpp with that folder's flags. Include only from there: like attention_impl.h,
// everything here is a template over S, so no function is shared between ISA levels.
//
// A row is covered by whole vectors and one tail vector (S::tail(valid lanes), S::load_tail /
// S::store_tail), so any length works and nothing is read or written past its end.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace morphserve::kernel_impl {

// Four independent accumulators hide the FMA latency and, like a pairwise sum, keep the float
// rounding error of the sum of squares far below what the norm can notice.
template <class S>
void rms_norm_rows(const float* x, const float* weight, float* out, int64_t n_rows, int64_t n, float eps) {
  using Vec = typename S::Vec;
  constexpr int L = S::kLanes;
  for (int64_t row = 0; row < n_rows; ++row) {
    const float* xr = x + row * n;
    float* outr = out + row * n;
    Vec s0 = S::zero(), s1 = S::zero(), s2 = S::zero(), s3 = S::zero();
    int64_t i = 0;
    for (; i + 4 * L <= n; i += 4 * L) {
      const Vec a = S::load(xr + i), b = S::load(xr + i + L), c = S::load(xr + i + 2 * L), d = S::load(xr + i + 3 * L);
      s0 = S::fmadd(a, a, s0);
      s1 = S::fmadd(b, b, s1);
      s2 = S::fmadd(c, c, s2);
      s3 = S::fmadd(d, d, s3);
    }
    for (; i < n; i += L) {
      const Vec a = S::load_tail(xr + i, S::tail(static_cast<int>(std::min<int64_t>(n - i, L))));
      s0 = S::fmadd(a, a, s0);
    }
    const float sum = S::reduce_add(S::add(S::add(s0, s1), S::add(s2, s3)));
    const float inv = static_cast<float>(1.0 / std::sqrt(static_cast<double>(sum) / static_cast<double>(n) + eps));
    const Vec vinv = S::set1(inv);
    for (i = 0; i + L <= n; i += L) S::store(outr + i, S::mul(S::mul(S::load(xr + i), vinv), S::load(weight + i)));
    if (i < n) {
      const auto tail = S::tail(static_cast<int>(n - i));
      S::store_tail(outr + i, tail, S::mul(S::mul(S::load_tail(xr + i, tail), vinv), S::load_tail(weight + i, tail)));
    }
  }
}

// silu(g) * u with sigmoid built from e = exp(-|g|), which never overflows (see scalar/activation.cpp).
template <class S>
typename S::Vec silu_mul_vec(typename S::Vec g, typename S::Vec u) {
  using Vec = typename S::Vec;
  const Vec one = S::set1(1.0f);
  const Vec e = S::exp(S::neg_abs(g));
  const Vec num = S::select_nonneg(g, one, e);
  return S::div(S::mul(S::mul(g, u), num), S::add(one, e));
}

template <class S>
void silu_mul_rows(const float* gate, const float* up, float* out, int64_t n) {
  constexpr int L = S::kLanes;
  int64_t i = 0;
  for (; i + L <= n; i += L) S::store(out + i, silu_mul_vec<S>(S::load(gate + i), S::load(up + i)));
  if (i < n) {
    const auto tail = S::tail(static_cast<int>(n - i));
    S::store_tail(out + i, tail, silu_mul_vec<S>(S::load_tail(gate + i, tail), S::load_tail(up + i, tail)));
  }
}

// Max, then exp and sum, then scale. The tail's missing lanes are -inf for the max and are kept
// out of the sum.
template <class S>
void softmax_row(float* x, int64_t n) {
  using Vec = typename S::Vec;
  constexpr int L = S::kLanes;
  if (n <= 0) return;
  const Vec neg_inf = S::set1(-std::numeric_limits<float>::infinity());
  const int64_t whole = n / L * L;
  const int left = static_cast<int>(n - whole);
  const auto tail = S::tail(left);
  Vec vmax = neg_inf;
  for (int64_t i = 0; i < whole; i += L) vmax = S::max(vmax, S::load(x + i));
  if (left) vmax = S::max(vmax, S::load_tail_or(neg_inf, x + whole, tail));
  const Vec max = S::set1(S::reduce_max(vmax));
  // A NaN entry is lost by MAXPS but still poisons the row below: its exp, and so the sum, is NaN.
  Vec sum = S::zero();
  for (int64_t i = 0; i < whole; i += L) {
    const Vec e = S::exp(S::sub(S::load(x + i), max));
    S::store(x + i, e);
    sum = S::add(sum, e);
  }
  if (left) {
    const Vec e = S::exp(S::sub(S::load_tail(x + whole, tail), max));
    S::store_tail(x + whole, tail, e);
    sum = S::add(sum, S::keep_tail(e, tail));
  }
  const Vec inv = S::set1(1.0f / S::reduce_add(sum));
  for (int64_t i = 0; i < whole; i += L) S::store(x + i, S::mul(S::load(x + i), inv));
  if (left) S::store_tail(x + whole, tail, S::mul(S::load_tail(x + whole, tail), inv));
}

template <class S>
void exp_rows(const float* x, float* out, int64_t n) {
  constexpr int L = S::kLanes;
  int64_t i = 0;
  for (; i + L <= n; i += L) S::store(out + i, S::exp(S::load(x + i)));
  if (i < n) {
    const auto tail = S::tail(static_cast<int>(n - i));
    S::store_tail(out + i, tail, S::exp(S::load_tail(x + i, tail)));
  }
}

}  // namespace morphserve::kernel_impl
