// The token texts come from llama.cpp's llama-vocab.cpp (load). Where several tokens of a list
// are present llama.cpp takes whichever its hash map yields first; here the lowest id wins.
#include "model/tokenizer_special_tokens.h"

#include <algorithm>
#include <span>
#include <string_view>

#include "model/tokenizer_vocab.h"

namespace morphserve {

namespace {

using Texts = std::span<const std::string_view>;

// "<｜end▁of▁sentence｜>" and friends: U+FF5C FULLWIDTH VERTICAL LINE, U+2581 for spaces.
#define MS_BAR "\xEF\xBD\x9C"
#define MS_SPACE "\xE2\x96\x81"

constexpr std::string_view kEndOfTurn[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
                              "<EOT>", "_<EOT>", "[EOT]", "<" MS_BAR "end" MS_SPACE "of" MS_SPACE "sentence" MS_BAR ">",
                              "<end_of_utterance>"};
constexpr std::string_view kEndOfMessage[] = {"<|eom_id|>"};
constexpr std::string_view kFimPre[] = {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<" MS_BAR "fim" MS_SPACE "begin" MS_BAR ">",
                           "<PRE>", MS_SPACE "<PRE>", "<|code_prefix|>", "<|prefix|>"};
constexpr std::string_view kFimSuf[] = {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<" MS_BAR "fim" MS_SPACE "hole" MS_BAR ">",
                           "<SUF>", MS_SPACE "<SUF>", "<|code_suffix|>", "<|suffix|>"};
constexpr std::string_view kFimMid[] = {"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<" MS_BAR "fim" MS_SPACE "end" MS_BAR ">",
                           "<MID>", MS_SPACE "<MID>", "<|code_middle|>", "<|middle|>"};
constexpr std::string_view kFimPad[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"};
constexpr std::string_view kFimRep[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"};
constexpr std::string_view kFimSep[] = {"<|file_sep|>"};
constexpr std::string_view kEndOfGeneration[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>",
                                    "<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>",
                                    "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>", "<end_of_utterance>", "<eos>",
                                    "<turn|>", "<|tool_response>",
                                    "<" MS_BAR "end" MS_SPACE "of" MS_SPACE "sentence" MS_BAR ">", "[e~["};

#undef MS_BAR
#undef MS_SPACE

bool listed(Texts texts, std::string_view text) {
  return std::find(texts.begin(), texts.end(), text) != texts.end();
}

void make_control(Vocab& vocab, int32_t id) {
  if (id >= 0) vocab.types[id] = TokenType::Control;
}

// Finds id by text when unset; a token found so becomes a control token.
void detect(Vocab& vocab, int32_t& id, Texts texts) {
  if (id >= 0) return;
  for (size_t i = 0; i < vocab.tokens.size(); ++i) {
    if (listed(texts, vocab.tokens[i])) {
      id = static_cast<int32_t>(i);
      make_control(vocab, id);
      return;
    }
  }
}

}  // namespace

void resolve_special_tokens(Vocab& vocab, FimIds fim) {
  detect(vocab, vocab.eot, kEndOfTurn);
  detect(vocab, vocab.eom, kEndOfMessage);
  detect(vocab, fim.pre, kFimPre);
  detect(vocab, fim.suf, kFimSuf);
  detect(vocab, fim.mid, kFimMid);
  detect(vocab, fim.pad, kFimPad);
  detect(vocab, fim.rep, kFimRep);
  detect(vocab, fim.sep, kFimSep);

  std::vector<int32_t>& eog = vocab.end_of_generation;
  eog.clear();
  for (const int32_t id : {fim.pad, fim.rep, fim.sep}) {
    if (id >= 0) eog.push_back(id);
  }
  for (size_t i = 0; i < vocab.tokens.size(); ++i) {
    if (listed(kEndOfGeneration, vocab.tokens[i])) {
      eog.push_back(static_cast<int32_t>(i));
      make_control(vocab, static_cast<int32_t>(i));
    }
  }
  for (const int32_t id : {vocab.eos, vocab.eot, vocab.eom}) {
    if (id >= 0) eog.push_back(id);
  }
  std::sort(eog.begin(), eog.end());
  eog.erase(std::unique(eog.begin(), eog.end()), eog.end());

  const auto has = [&](std::string_view text) {
    return std::any_of(eog.begin(), eog.end(), [&](int32_t id) { return vocab.tokens[id] == text; });
  };
  const auto drop = [&](std::string_view text, TokenType type) {
    for (auto it = eog.begin(); it != eog.end(); ++it) {
      if (vocab.tokens[*it] == text) {
        vocab.types[*it] = type;
        eog.erase(it);
        return;
      }
    }
  };
  // gpt-oss (o200k_harmony) and solar-open: "<|end|>" ends a message there, not the generation.
  if (has("<|end|>") && ((has("<|return|>") && (has("<|call|>") || has("<|calls|>"))) || ((has("<|call|>") || has("<|calls|>")) && has("<|flush|>")))) {
    drop("<|end|>", TokenType::UserDefined);
  }
  // Gemma 4: "</s>" is plain text there.
  if (has("<|tool_response>") && has("</s>")) drop("</s>", TokenType::Normal);
}

}  // namespace morphserve
