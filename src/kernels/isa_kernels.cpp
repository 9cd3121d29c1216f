// The per-level tables of the row-wise, attention and KV-store kernels (elementwise_impl.h). Only
// addresses are taken here, so this file is compiled without any ISA flags.
#include <array>

#include "core/error.h"
#include "kernels/elementwise_impl.h"

namespace morphserve::kernel_impl {
namespace {

#define MORPHSERVE_ISA_KERNELS(ns) \
  IsaKernels { &ns::rms_norm, &ns::silu_mul, &ns::softmax, &ns::exp_array, &ns::attention_units, &ns::store_f16 }

// Indexed by Isa's value.
constexpr std::array kTables = {MORPHSERVE_ISA_KERNELS(scalar), MORPHSERVE_ISA_KERNELS(avx2), MORPHSERVE_ISA_KERNELS(avx512)};

#undef MORPHSERVE_ISA_KERNELS

}  // namespace

const IsaKernels& isa_kernels(Isa isa) {
  const auto index = static_cast<size_t>(isa);
  if (index >= kTables.size()) fail<InvalidArgument>("unknown instruction set {}", static_cast<int>(isa));
  return kTables[index];
}

}  // namespace morphserve::kernel_impl
