#pragma once
// The pre-tokenizer of a byte-level BPE vocabulary: text cut into words before BPE merges, by the
// regular expressions llama.cpp uses for each tokenizer.ggml.pre name, applied one after another
// (each cuts every piece the previous ones left; text between matches stays a piece of its own).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace morphserve {

// The regex sets (llama.cpp's LLAMA_VOCAB_PRE_TYPE_* groups that share one).
enum class PreTokenizerKind { Default, Gpt2, Llama3, Qwen2, Falcon, DeepseekLlm, DeepseekCoder, Starcoder };

struct PreTokenizerSpec {
  std::string_view name;  // tokenizer.ggml.pre
  PreTokenizerKind kind;
  bool ignore_merges;     // a word that is already a token becomes that token without merging
  bool add_bos;           // llama.cpp's add_bos default for this name (tokenizer.ggml.add_bos_token overrides)
};

// The spec of a tokenizer.ggml.pre name ("" means "default", as llama.cpp reads a missing key),
// or nullptr when morphserve does not know it.
const PreTokenizerSpec* find_pre_tokenizer(std::string_view name);
// The supported names, comma separated, for error messages.
std::string supported_pre_tokenizer_names();

class PreTokenizer {
 public:
  explicit PreTokenizer(PreTokenizerKind kind);

  // The words of text, in order; their concatenation is the text, except that ill-formed UTF-8
  // becomes U+FFFD first (as llama.cpp's unicode_cpts_from_utf8 reads it: lenient about overlong
  // forms and surrogates, one U+FFFD per byte it cannot start a character with).
  std::vector<std::string> split(std::string_view text) const;

 private:
  struct Regex;
  std::vector<std::shared_ptr<const Regex>> regexes_;
};

}  // namespace morphserve
