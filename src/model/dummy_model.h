#pragma once
// Random-weight Llama models of named shapes (like vLLM's dummy load format): load tests and
// benchmarks at realistic sizes with no download. Weights come from a fixed seed, so every run of
// the same shape is identical; the vocabulary is byte-level (special tokens, 256 byte tokens and the
// word-boundary piece; the rest unused), so any text round-trips through the tokenizer.
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "model/llama_weights.h"

namespace morphserve {

// Shape names: tiny (tests), small (12 layers, width 768), 1b (16 layers, width 2048, GQA), all
// Llama 2 style; llama3-1b (Llama-3.2-1B's shape: 128K vocabulary, rope_freqs, tied embeddings)
// and qwen2.5-0.5b (Qwen2.5-0.5B's: Q/K/V biases, NEOX RoPE); llama3-tiny, qwen2-tiny and
// mistral-tiny (Mistral 7B's SentencePiece vocabulary, GQA 4:1, rope base 1e6), two narrow layers
// with those vocabularies and features, for tests.
std::vector<std::string> dummy_shape_names();
// The configuration of a named shape; throws InvalidArgument listing the names for an unknown one.
LlamaConfig dummy_config(std::string_view shape);
// A byte-level SentencePiece vocabulary of vocab_size tokens (>= 260): <unk>, <s>, </s>, the 256
// byte tokens, the word-boundary piece U+2581, then unused fillers.
Vocab byte_level_vocab(int vocab_size);
// Builds the model with linear weights in `type` (F32, F16 or BF16: quantized formats are made by
// converting one of these, which the engine's loader does), allocated from `backend`.
LlamaModel make_dummy_model(std::string_view shape, DType type, Backend& backend);

}  // namespace morphserve
