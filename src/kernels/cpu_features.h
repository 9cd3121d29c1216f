#pragma once
// Which instruction set the kernels run with. Every kernel is compiled once per Isa (scalar/,
// avx2/, avx512/) and the dispatcher picks the best one the CPU supports, once, at start-up.
// MORPHSERVE_ISA=scalar|avx2|avx512 forces a lower level (for comparisons and tests); asking for
// one the CPU lacks is an error, never a silent fallback.
#include <optional>
#include <string_view>

namespace morphserve {

enum class Isa { Scalar = 0, Avx2 = 1, Avx512 = 2 };

std::string_view isa_name(Isa isa);
std::optional<Isa> parse_isa(std::string_view name);
// Highest level this CPU can run (AVX2 needs FMA+F16C; AVX-512 needs F, BW, VL, DQ and VNNI).
Isa cpu_max_isa();
bool cpu_supports(Isa isa);
// The level kernels dispatch to: cpu_max_isa() unless MORPHSERVE_ISA asks for another.
// Throws InvalidArgument for an unknown or unsupported MORPHSERVE_ISA value.
Isa active_isa();

}  // namespace morphserve
