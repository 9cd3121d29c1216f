#pragma once
// llama.cpp's by-text special-token rules (llama_vocab::impl::load): converters do not always
// store the end-of-turn or fill-in-the-middle ids, so llama.cpp finds them by their text, treats
// such tokens as control tokens, and keeps a list of the tokens that end generation.
#include <cstdint>

namespace morphserve {

struct Vocab;

// Ids stored under tokenizer.ggml.fim_{pre,suf,mid,pad,rep,sep}_token_id (-1 when absent).
struct FimIds {
  int32_t pre = -1, suf = -1, mid = -1, pad = -1, rep = -1, sep = -1;
};

// Sets vocab.eot and vocab.eom where -1 from the token texts llama.cpp looks for ("<|eot_id|>",
// "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", ...; "<|eom_id|>"), likewise the
// FIM ids, and gives each token so found, and each token whose text llama.cpp lists as ending
// generation, the Control type. Fills vocab.end_of_generation with those tokens, the FIM
// pad/repo/separator tokens and eos/eot/eom, except "<|end|>" where the vocabulary also has
// "<|return|>" and "<|call|>" (gpt-oss), which llama.cpp turns into a user-defined token.
void resolve_special_tokens(Vocab& vocab, FimIds fim);

}  // namespace morphserve
