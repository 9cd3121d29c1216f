#pragma once
// Writes a loaded model (a dummy, a Hugging Face checkpoint, a GGUF read back) as a GGUF file that
// both load_llama_gguf and llama.cpp read: `morphserve export`, the tests' model files, and the
// F16 inputs that llama-quantize turns into K-quant files for the llama.cpp comparisons.
#include <string>

#include "model/llama_weights.h"

namespace morphserve {

// Metadata under the model's architecture prefix (llama.* or qwen2.*), its vocabulary under
// tokenizer.ggml.*, the chat template, and every tensor in its stored type with llama.cpp's names
// (biases and rope_freqs.weight when present, no output.weight when tied). Throws Error naming
// the path on I/O failure.
void write_llama_gguf(const LlamaModel& model, const std::string& path);

}  // namespace morphserve
