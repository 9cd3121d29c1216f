// The reference matmul for the K-quant weights (Q4_K, Q5_K, Q6_K) against the shared int8
// activation blocks of 32. Each weight sub-block lines up with activation blocks: a Q4_K/Q5_K
// sub-block of 32 is one activation block, y += xd·(d·sc·Σq·x − dmin·m·Σx); a Q6_K activation
// block holds two 16-weight sub-blocks, y += xd·d·(sc₀·Σ(q−32)·x + sc₁·Σ(q−32)·x). The integer
// parts are exact, so the SIMD levels, which compute the same integers, differ from this only in
// float summation order.
#include "core/half.h"
#include "kernels/kquant_rows.h"
#include "kernels/matmul_impl.h"

namespace morphserve::matmul_detail::scalar {
namespace {

// Q4_K and Q5_K share everything but how a weight's level is read.
template <typename Block, typename Level>
void compute_q45_K(const MatmulCall& call, int64_t row_begin, int64_t row_end, Level level) {
  const QuantizedActs acts = QuantizedActs::at(call.acts, call.n_tokens, call.w.cols);
  const int64_t n_super = call.w.cols / kKQuantBlock;
  for (int64_t r = row_begin; r < row_end; ++r) {
    const Block* w = reinterpret_cast<const Block*>(call.weight_row(r));
    for (int64_t t = 0; t < call.n_tokens; ++t) {
      const int8_t* xq = acts.qs + t * acts.stride;
      const float* xd = acts.d + t * acts.nb;
      const int32_t* xs = acts.sum + t * acts.nb;
      float acc = 0.0f;
      for (int64_t i = 0; i < n_super; ++i) {
        const float d = fp16_to_fp32(w[i].d);
        const float dmin = fp16_to_fp32(w[i].dmin);
        for (int j = 0; j < 8; ++j) {
          const int64_t b = i * 8 + j;
          int32_t dot = 0;
          for (int l = 0; l < 32; ++l) dot += level(w[i], j, l) * xq[b * 32 + l];
          uint8_t sc, m;
          kquant_scale_min(j, w[i].scales, &sc, &m);
          acc += xd[b] * (d * static_cast<float>(sc * dot) - dmin * static_cast<float>(m * xs[b]));
        }
      }
      call.y[t * call.w.rows + r] = acc;
    }
  }
}

// Level of weight l (0..31) of sub-block j: chunk j/2 of 32 bytes, low nibble for even j.
int q4_K_level(const BlockQ4_K& b, int j, int l) { return (b.qs[j / 2 * 32 + l] >> (4 * (j % 2))) & 0x0f; }

int q5_K_level(const BlockQ5_K& b, int j, int l) {
  return ((b.qs[j / 2 * 32 + l] >> (4 * (j % 2))) & 0x0f) | (((b.qh[l] >> j) & 1) << 4);
}

// Signed value q − 32 of weight k (0..255) of a Q6_K super-block.
int q6_K_value(const BlockQ6_K& b, int k) {
  const int half = k / 128, pos = k % 128, quarter = pos / 32, l = pos % 32;
  const uint8_t low = b.ql[half * 64 + (quarter % 2) * 32 + l];
  const int lo4 = quarter < 2 ? (low & 0x0f) : (low >> 4);
  const int hi2 = (b.qh[half * 32 + l] >> (2 * quarter)) & 3;
  return (lo4 | (hi2 << 4)) - 32;
}

}  // namespace

void compute_q4_K(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  compute_q45_K<BlockQ4_K>(call, row_begin, row_end, q4_K_level);
}

void compute_q5_K(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  compute_q45_K<BlockQ5_K>(call, row_begin, row_end, q5_K_level);
}

void compute_q6_K(const MatmulCall& call, int64_t row_begin, int64_t row_end) {
  const QuantizedActs acts = QuantizedActs::at(call.acts, call.n_tokens, call.w.cols);
  const int64_t n_super = call.w.cols / kKQuantBlock;
  for (int64_t r = row_begin; r < row_end; ++r) {
    const BlockQ6_K* w = reinterpret_cast<const BlockQ6_K*>(call.weight_row(r));
    for (int64_t t = 0; t < call.n_tokens; ++t) {
      const int8_t* xq = acts.qs + t * acts.stride;
      const float* xd = acts.d + t * acts.nb;
      float acc = 0.0f;
      for (int64_t i = 0; i < n_super; ++i) {
        const float d = fp16_to_fp32(w[i].d);
        for (int j = 0; j < 8; ++j) {
          const int64_t b = i * 8 + j;
          int32_t dot = 0;  // both sub-blocks of 16, each with its int8 scale: at most 2²⁴ in size
          for (int s = 0; s < 2; ++s) {
            int32_t part = 0;
            for (int l = 0; l < 16; ++l) part += q6_K_value(w[i], j * 32 + s * 16 + l) * xq[b * 32 + s * 16 + l];
            dot += w[i].scales[2 * j + s] * part;
          }
          acc += xd[b] * (d * static_cast<float>(dot));
        }
      }
      call.y[t * call.w.rows + r] = acc;
    }
  }
}

}  // namespace morphserve::matmul_detail::scalar
