#pragma once
// Hugging Face tokenizer.json (the `tokenizers` library's file) to and from our Vocab, for the two
// kinds Llama-family checkpoints ship: byte-level BPE (Llama 3, Qwen2: a ByteLevel pre-tokenizer,
// with a Split regex naming the pre-tokenizer) and SentencePiece-style BPE (Llama 2, Mistral:
// byte_fallback, "▁" for spaces). The chat template comes from tokenizer_config.json beside it.
#include <string>

#include "model/tokenizer_vocab.h"

namespace morphserve {

struct HfConfig;

struct HfTokenizer {
  Vocab vocab;
  std::string chat_template;  // tokenizer_config.json's chat_template, or ""
};

// Reads tokenizer.json (and tokenizer_config.json beside it when present). Byte-level BPE maps its
// Split regex to llama.cpp's pre-tokenizer name (llama-bpe, qwen2; no Split: gpt-2); SentencePiece
// BPE becomes an SPM vocabulary whose scores rank tokens by the merge that makes them, so
// llama.cpp's SPM merge order equals the BPE merge order. Special ids come from config.json
// (bos/eos) and tokenizer_config.json (add_bos_token). Throws ModelFileError with one sentence for
// a model type other than BPE, an unknown pre-tokenizer regex, or malformed JSON.
HfTokenizer read_hf_tokenizer(const std::string& path, const HfConfig& config);

// Adds unused filler tokens until the vocabulary has n tokens (checkpoints pad the embedding).
void pad_vocab(Vocab& vocab, int n);

// The vocabulary as tokenizer.json text that read_hf_tokenizer reads back to the same tokens,
// types and merge order. Throws InvalidArgument for a BPE pre-tokenizer without a known regex.
std::string hf_tokenizer_json(const Vocab& vocab);

}  // namespace morphserve
