#include "kernels/cpu_features.h"

#include <cpuid.h>

#include <cstdlib>
#include <string>

#include "core/error.h"

namespace morphserve {

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
  }
  return "unknown";
}

std::optional<Isa> parse_isa(std::string_view name) {
  if (name == "scalar") return Isa::Scalar;
  if (name == "avx2") return Isa::Avx2;
  if (name == "avx512") return Isa::Avx512;
  return std::nullopt;
}

namespace {
// clang's __builtin_cpu_supports knows neither "f16c" nor "bmi2", so these two come from CPUID
// (leaf 1 ECX bit 29, leaf 7 EBX bit 8); the AVX features above them already imply the OS
// saves the YMM state, which the builtin checks.
bool cpu_has_f16c_and_bmi2() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
  const bool f16c = (ecx & bit_F16C) != 0;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  const bool bmi2 = (ebx & bit_BMI2) != 0;
  return f16c && bmi2;
}
}  // namespace

namespace {
Isa detect_max_isa() {
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512vnni");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c_and_bmi2();
  if (avx512 && avx2) return Isa::Avx512;
  if (avx2) return Isa::Avx2;
  return Isa::Scalar;
}
}  // namespace

// Detected once: every *_with_isa kernel entry checks it, and CPUID traps to the hypervisor in a
// virtual machine (measured: 15% of a decode step on dummy:small Q4_K_M when it ran per call).
Isa cpu_max_isa() {
  static const Isa detected = detect_max_isa();
  return detected;
}

bool cpu_supports(Isa isa) { return static_cast<int>(isa) <= static_cast<int>(cpu_max_isa()); }

Isa active_isa() {
  static const Isa chosen = [] {
    const char* requested = std::getenv("MORPHSERVE_ISA");
    if (!requested || !*requested) return cpu_max_isa();
    const auto isa = parse_isa(requested);
    if (!isa) fail<InvalidArgument>("MORPHSERVE_ISA={} is not one of scalar, avx2, avx512", requested);
    if (!cpu_supports(*isa)) {
      fail<InvalidArgument>("MORPHSERVE_ISA={} asks for an instruction set this CPU lacks (it has up to {})",
                            requested, isa_name(cpu_max_isa()));
    }
    return *isa;
  }();
  return chosen;
}

}  // namespace morphserve
