#pragma once
// Per-layer precision requests such as "all:w4" or "0-3:w4,4:w8": which DType each decoder
// layer's linear weights should run in. Used by --precision (generate, ppl) and by morphing.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"

namespace morphserve {

// One entry per layer; nullopt keeps the layer as stored.
using PrecisionMap = std::vector<std::optional<DType>>;

// Parses a comma-separated list of RANGE:FORMAT items, where RANGE is "all", a layer index N, or
// "N-M" (inclusive), and FORMAT is f32, f16, bf16, w8 (q8_0) or w4 (q4_0). Later items override
// earlier ones. An empty spec keeps every layer as stored. Throws InvalidArgument with the
// offending item for bad syntax, unknown formats or layers outside [0, n_layers).
PrecisionMap parse_precision_map(std::string_view spec, int n_layers);

// Short text form, e.g. "0-3:q4_0,4:q8_0" (layers as stored are left out; "" when all are).
std::string format_precision_map(const PrecisionMap& map);

}  // namespace morphserve
