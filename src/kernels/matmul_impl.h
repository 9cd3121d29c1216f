#pragma once
// Private to kernels/: the pieces each instruction-set build of matmul provides, and the
// activation-quantization rule they all share. matmul.cpp owns validation, scratch memory and the
// split across threads; each ISA owns its data layouts and inner loops.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "core/matrix_view.h"

namespace morphserve::matmul_detail {

// One matmul call as the ISA kernels see it.
struct MatmulCall {
  MatrixView w;
  const float* x = nullptr;
  int64_t n_tokens = 0;
  float* y = nullptr;
  std::byte* acts = nullptr;  // activation scratch of plan()'s size, filled by prepare()
  int variant = 0;            // ISA-private choice made by plan() (e.g. GEMV vs GEMM layout)
  int64_t row_grain = 1;      // threads' row ranges are cut at multiples of this
  // w.row_bytes(), once per call: the tiles address rows thousands of times per call, and the
  // division and checks behind dtype_row_bytes showed up at 2.6% of decode in perf.
  size_t w_row_bytes = 0;

  const std::byte* weight_row(int64_t r) const { return w.data + w_row_bytes * static_cast<size_t>(r); }
};

// One instruction set's matmul. The orchestrator calls plan, then prepare over
// [0, prepare_items) split across threads, then compute over row ranges split across threads.
struct IsaMatmul {
  // Chooses how this call runs (sets variant and row_grain); returns the activation scratch bytes.
  size_t (*plan)(MatmulCall& call);
  // Independent pieces of activation preparation (tokens or token panels); 0 when x is used as is.
  int64_t (*prepare_items)(const MatmulCall& call);
  void (*prepare)(const MatmulCall& call, int64_t begin, int64_t end);
  // y for rows [row_begin, row_end) of every token.
  void (*compute)(const MatmulCall& call, int64_t row_begin, int64_t row_end);
};

// Row conversions, one set per ISA (the vector ones use F16C / shifts).
struct RowConverters {
  void (*f16_to_f32)(const uint16_t* src, float* dst, int64_t n);
  void (*bf16_to_f32)(const uint16_t* src, float* dst, int64_t n);
  void (*f32_to_f16)(const float* src, uint16_t* dst, int64_t n);
  void (*f32_to_bf16)(const float* src, uint16_t* dst, int64_t n);
};

// The activation quantizer every ISA reproduces bit for bit, so the integer dot products agree
// exactly across levels and only the float summation order differs. Per block of 32:
// amax = max|x|, d = amax/127 (kept as fp32: an fp16 scale would add ~5e-4 relative error per
// block for no speed gain here), q = round-to-nearest-even(x * (127/amax)) (what cvtps2dq does),
// and sum = Σq, which the kernels use to undo the unsigned-offset trick of the integer dot products.
inline void quantize_act_block_ref(const float* x, int8_t* q, float* d, int32_t* sum) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
  const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
  int32_t s = 0;
  for (int j = 0; j < 32; ++j) {
    q[j] = static_cast<int8_t>(std::nearbyint(x[j] * id));
    s += q[j];
  }
  *d = amax / 127.0f;
  *sum = s;
}

// Quantized activation rows in the plain layout (scalar and AVX2 kernels, and AVX-512's GEMV):
// token t's int8 values at qs + t*stride, its block scales at d + t*nb, block sums at sum + t*nb.
struct QuantizedActs {
  int8_t* qs = nullptr;
  float* d = nullptr;
  int32_t* sum = nullptr;
  int64_t nb = 0;      // blocks per row
  int64_t stride = 0;  // bytes between tokens' qs (a multiple of 64 so rows start aligned)

  static int64_t stride_for(int64_t cols) { return (cols + 63) / 64 * 64; }
  static size_t bytes(int64_t n_tokens, int64_t cols) {
    const int64_t nb = cols / 32;
    return static_cast<size_t>(n_tokens) * static_cast<size_t>(stride_for(cols) + nb * 8 + 64);
  }
  static QuantizedActs at(std::byte* base, int64_t n_tokens, int64_t cols) {
    QuantizedActs a;
    a.nb = cols / 32;
    a.stride = stride_for(cols);
    a.qs = reinterpret_cast<int8_t*>(base);
    a.d = reinterpret_cast<float*>(base + n_tokens * a.stride);
    a.sum = reinterpret_cast<int32_t*>(base + n_tokens * a.stride + n_tokens * a.nb * 4);
    return a;
  }
};

// Each ISA's entry points. The AVX2 and AVX-512 ones live in files compiled with those flags and
// must only be called after cpu_supports() said yes.
namespace scalar {
const IsaMatmul& matmul_table();
const RowConverters& row_converters();
void quantize_act_row(const float* x, int64_t cols, int8_t* qs, float* d, int32_t* sum);
void compute_float(const MatmulCall& call, int64_t row_begin, int64_t row_end);
void compute_q8_0(const MatmulCall& call, int64_t row_begin, int64_t row_end);
void compute_q4_0(const MatmulCall& call, int64_t row_begin, int64_t row_end);
void compute_q4_K(const MatmulCall& call, int64_t row_begin, int64_t row_end);
void compute_q5_K(const MatmulCall& call, int64_t row_begin, int64_t row_end);
void compute_q6_K(const MatmulCall& call, int64_t row_begin, int64_t row_end);
}  // namespace scalar

namespace avx2 {
const IsaMatmul& matmul_table();
const RowConverters& row_converters();
void quantize_act_row(const float* x, int64_t cols, int8_t* qs, float* d, int32_t* sum);
void compute_float(const MatmulCall& call, int64_t row_begin, int64_t row_end);
void compute_q8_0(const MatmulCall& call, int64_t row_begin, int64_t row_end);
void compute_q4_0(const MatmulCall& call, int64_t row_begin, int64_t row_end);
void compute_q4_K(const MatmulCall& call, int64_t row_begin, int64_t row_end);
void compute_q5_K(const MatmulCall& call, int64_t row_begin, int64_t row_end);
void compute_q6_K(const MatmulCall& call, int64_t row_begin, int64_t row_end);
// The quantized GEMM (matmul_gemm_quant.cpp): every quantized format, from enough tokens.
size_t quant_gemm_scratch_bytes(int64_t n_tokens, int64_t cols);
int64_t quant_gemm_panels(int64_t n_tokens);
void prepare_quant_gemm(const MatmulCall& call, int64_t panel_begin, int64_t panel_end);
void compute_quant_gemm(const MatmulCall& call, int64_t row_begin, int64_t row_end);
// The float GEMM (matmul_gemm_float.cpp): F32 / F16 / BF16, from enough tokens.
size_t float_gemm_scratch_bytes(int64_t n_tokens, int64_t cols);
int64_t float_gemm_panels(int64_t n_tokens, int64_t cols);
void prepare_float_gemm(const MatmulCall& call, int64_t panel_begin, int64_t panel_end);
void compute_float_gemm(const MatmulCall& call, int64_t row_begin, int64_t row_end);
}  // namespace avx2

namespace avx512 {
const IsaMatmul& matmul_table();
const RowConverters& row_converters();
void quantize_act_row(const float* x, int64_t cols, int8_t* qs, float* d, int32_t* sum);
}  // namespace avx512

}  // namespace morphserve::matmul_detail
