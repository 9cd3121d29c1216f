#pragma once
// Per-instruction-set entry points of the row-wise kernels (norm, activation, softmax, exp), of
// attention and of the F16 KV store, and the one table that dispatches them. Private to kernels/ and its tests: callers use the public headers, which validate
// arguments and dispatch on active_isa(). Each namespace is compiled from its own folder with that
// folder's ISA flags, so no function here may be called on a CPU that lacks the ISA.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "kernels/attention.h"
#include "kernels/cpu_features.h"

namespace morphserve::kernel_impl {

// Everything one attention call needs. The work is cut into units of heads_per_unit consecutive
// query heads of one query, all sharing one kv head (heads_per_unit divides the GQA group), so a
// unit streams its kv head's K/V from memory once for all its heads. With per_query = n_heads /
// heads_per_unit, unit u is query u / per_query, heads from (u % per_query) * heads_per_unit.
struct AttentionArgs {
  const float* q = nullptr;
  int64_t n_q = 0;
  int64_t first_pos = 0;
  int n_heads = 0;
  KvBlocks kv;
  float scale = 1.0f;
  float* out = nullptr;
  int heads_per_unit = 1;
  // No member functions: this header is compiled under several ISA flags, and an inline function
  // emitted with AVX-512 code could be the copy the linker keeps for every caller.
};

// Keys scored per online-softmax step: independent of block_size so that tiny blocks (1, 7) do
// not make the max/rescale bookkeeping run per key, and small enough that a chunk's K and V rows
// stay in L1/L2 while every head of a unit walks them.
inline constexpr int kAttentionKeyChunk = 64;
// Upper bound of heads_per_unit: the per-head running state of a unit lives on the stack.
inline constexpr int kMaxHeadsPerUnit = 8;

#define MORPHSERVE_DECLARE_ISA_KERNELS(ns)                                                             \
  namespace ns {                                                                                       \
  void rms_norm(const float* x, const float* weight, float* out, int64_t n_rows, int64_t n, float eps); \
  void silu_mul(const float* gate, const float* up, float* out, int64_t n);                            \
  void softmax(float* x, int64_t n);                                                                   \
  /* out[i] = exp(x[i]); exposed for the accuracy tests of the vector exp. */                         \
  void exp_array(const float* x, float* out, int64_t n);                                               \
  void attention_units(const AttentionArgs& args, int64_t unit_begin, int64_t unit_end);               \
  /* Round-to-nearest-even fp32 -> fp16 of n values (the F16 KV store); dst needs no alignment. */     \
  void store_f16(const float* src, std::byte* dst, int64_t n);                                         \
  }

MORPHSERVE_DECLARE_ISA_KERNELS(scalar)
MORPHSERVE_DECLARE_ISA_KERNELS(avx2)
MORPHSERVE_DECLARE_ISA_KERNELS(avx512)

#undef MORPHSERVE_DECLARE_ISA_KERNELS

// One level's entry points: every public kernel dispatches through this one table (indexed by
// Isa) instead of a switch of its own.
struct IsaKernels {
  void (*rms_norm)(const float* x, const float* weight, float* out, int64_t n_rows, int64_t n, float eps);
  void (*silu_mul)(const float* gate, const float* up, float* out, int64_t n);
  void (*softmax)(float* x, int64_t n);
  void (*exp_array)(const float* x, float* out, int64_t n);
  void (*attention_units)(const AttentionArgs& args, int64_t unit_begin, int64_t unit_end);
  void (*store_f16)(const float* src, std::byte* dst, int64_t n);
};

// The entry points of `isa`, which this CPU may lack: callers check require_isa first, or pass
// active_isa().
const IsaKernels& isa_kernels(Isa isa);

// Throws InvalidArgument naming `kernel` if this CPU cannot run `isa`: a test or benchmark that
// asks for a level must never silently get another.
inline void require_isa(Isa isa, const char* kernel) {
  if (!cpu_supports(isa)) {
    fail<InvalidArgument>("{} was asked to run with {}, which this CPU lacks (it has up to {})", kernel,
                          isa_name(isa), isa_name(cpu_max_isa()));
  }
}

}  // namespace morphserve::kernel_impl
