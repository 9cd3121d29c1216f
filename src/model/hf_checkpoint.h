#pragma once
// Hugging Face checkpoints: a folder with config.json, model.safetensors or shards listed in
// model.safetensors.index.json (F32/F16/BF16), and tokenizer.json, for LlamaForCausalLM and
// Qwen2ForCausalLM. Loaded into the same LlamaModel a GGUF file gives, so the engine and morphing
// do not know where a model came from.
//
// Layout: Hugging Face keeps Q and K rows in the order its rotate_half RoPE pairs them (dimension
// i with i + head_dim/2), which llama.cpp's converter permutes into adjacent pairs for Llama GGUF
// files. We keep the rows as stored and run NEOX-style RoPE instead (LlamaConfig::rope_neox), so no
// tensor is rewritten at load; writing a non-NEOX model out undoes the converter's permutation.
#include <cstdint>
#include <string>

#include "model/llama_weights.h"

namespace morphserve {

// Whether `path` is a folder holding config.json.
bool is_hf_checkpoint(const std::string& path);

// Loads the checkpoint in `dir`. Throws ModelFileError with one sentence naming the file (and
// key or tensor) for an unsupported architecture or feature (sliding window, MLP biases,
// quantized checkpoints, rope scaling other than linear/llama3), a missing or mis-shaped tensor,
// a dtype other than F32/F16/BF16, or a tokenizer.json it cannot use.
// Every matrix is allocated from `backend`.
LlamaModel load_hf_checkpoint(const std::string& dir, Backend& backend);

// Writes `model` as a checkpoint into `dir` (created if missing): config.json, tokenizer.json and
// safetensors shards of at most max_shard_bytes with their index. Linear weights must be F32,
// F16 or BF16 (InvalidArgument for quantized ones: safetensors has no type for them).
void write_hf_checkpoint(const LlamaModel& model, const std::string& dir, uint64_t max_shard_bytes = 2ull << 30);

}  // namespace morphserve
