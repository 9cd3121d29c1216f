#pragma once
// Turns what the user passed to -m (a GGUF path, a Hugging Face checkpoint folder or
// dummy:SHAPE[:FORMAT]) plus --precision into a
// resident model whose layers are in the requested formats.
#include <string>
#include <string_view>

#include "model/llama_weights.h"
#include "quant/precision_map.h"

namespace morphserve {

class ThreadPool;

// The model `serve` and `generate` run when no -m is given: small enough to start in a second on
// any machine, big enough to exercise every kernel.
inline constexpr std::string_view kDefaultModel = "dummy:tiny";

// Loads `source` and converts layers as `precision_spec` asks (see parse_precision_map).
// "dummy:SHAPE[:FORMAT]": FORMAT f32/f16/bf16 (default f16) or w8/w4/q8_0/q4_0, which converts
// every layer (an explicit --precision still applies on top). Throws ModelFileError or
// InvalidArgument with a message for the user, or OutOfBudget when the weights do not fit in
// the backend's budget (before the rest of the file is read). Conversions run on `pool`; every
// matrix is allocated from `backend`.
LlamaModel load_model(const std::string& source, std::string_view precision_spec, ThreadPool& pool, Backend& backend);

// Converts every linear matrix of a layer to `target`. A matrix whose width is not a multiple of
// 32 cannot be Q8_0/Q4_0 and stays in its current type (llama.cpp does the same); returns how
// many matrices kept their type that way.
int convert_layer(LayerWeights& layer, DType target, ThreadPool& pool, Backend& backend);

// Applies a precision map to all layers (nullopt entries are left alone).
void apply_precision_map(LlamaModel& model, const PrecisionMap& map, ThreadPool& pool, Backend& backend);

}  // namespace morphserve
