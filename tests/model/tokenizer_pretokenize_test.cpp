// The pre-tokenizer regexes on hand-checked cases. For llama-bpe (Llama 3) and qwen2 the shared
// data has llama.cpp's .inp/.out vectors but not the vocabulary (ggml-vocab-llama-bpe.gguf,
// ggml-vocab-qwen2.gguf): checking their ids needs those vocab files, so their word splits are
// checked here instead, against the tokenizer.json regexes as Hugging Face's tokenizers apply them.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "model/tokenizer_pretokenize.h"

namespace morphserve {
namespace {

using Words = std::vector<std::string>;

Words split(PreTokenizerKind kind, const std::string& text) { return PreTokenizer(kind).split(text); }

TEST(PreTokenizer, NamesFollowLlamaCpp) {
  ASSERT_NE(find_pre_tokenizer("llama-bpe"), nullptr);
  EXPECT_EQ(find_pre_tokenizer("llama-bpe")->kind, PreTokenizerKind::Llama3);
  EXPECT_TRUE(find_pre_tokenizer("llama-bpe")->ignore_merges);
  EXPECT_TRUE(find_pre_tokenizer("llama3")->add_bos);
  EXPECT_EQ(find_pre_tokenizer("dbrx")->kind, PreTokenizerKind::Llama3);
  EXPECT_FALSE(find_pre_tokenizer("smaug-bpe")->ignore_merges);
  EXPECT_EQ(find_pre_tokenizer("")->kind, PreTokenizerKind::Default);
  EXPECT_EQ(find_pre_tokenizer("refact")->kind, PreTokenizerKind::Starcoder);
  EXPECT_EQ(find_pre_tokenizer("mpt")->kind, PreTokenizerKind::Gpt2);
  EXPECT_EQ(find_pre_tokenizer("nonesuch"), nullptr);
  EXPECT_NE(supported_pre_tokenizer_names().find("qwen2"), std::string::npos);
}

TEST(PreTokenizer, Llama3Contractions) {
  EXPECT_EQ(split(PreTokenizerKind::Llama3, "I'm you'LL he's"), (Words{"I", "'m", " you", "'LL", " he", "'s"}));
  EXPECT_EQ(split(PreTokenizerKind::Gpt2, "you'LL"), (Words{"you", "'", "LL"}));  // GPT-2's are lower case only
}

TEST(PreTokenizer, Llama3DigitsInGroupsOfThree) {
  EXPECT_EQ(split(PreTokenizerKind::Llama3, "1234567 89"), (Words{"123", "456", "7", " ", "89"}));
  EXPECT_EQ(split(PreTokenizerKind::Qwen2, "2024"), (Words{"2", "0", "2", "4"}));
  EXPECT_EQ(split(PreTokenizerKind::Gpt2, " 2024x"), (Words{" 2024", "x"}));
}

TEST(PreTokenizer, Llama3PunctuationAndLetters) {
  // [^\r\n\p{L}\p{N}]?\p{L}+ takes one leading non-letter; ' ?[^\s\p{L}\p{N}]+[\r\n]*' runs of symbols.
  EXPECT_EQ(split(PreTokenizerKind::Llama3, "Hello, world!!\n"), (Words{"Hello", ",", " world", "!!\n"}));
  EXPECT_EQ(split(PreTokenizerKind::Llama3, "(x) $y"), (Words{"(x", ")", " $", "y"}));
}

TEST(PreTokenizer, Llama3SpacesBeforeNewlines) {
  // \s*[\r\n]+ keeps spaces with the newline after them; \s+(?!\S) leaves the last space to the word.
  EXPECT_EQ(split(PreTokenizerKind::Llama3, "a  \n\nb"), (Words{"a", "  \n\n", "b"}));
  EXPECT_EQ(split(PreTokenizerKind::Llama3, "a   b"), (Words{"a", "  ", " b"}));
  EXPECT_EQ(split(PreTokenizerKind::Llama3, "a  "), (Words{"a", "  "}));
  EXPECT_EQ(split(PreTokenizerKind::Qwen2, "x\t\ty"), (Words{"x", "\t", "\ty"}));
}

TEST(PreTokenizer, CjkIsLetters) {
  // 你好 are letters (\p{L}); the ideographic full stop is punctuation.
  EXPECT_EQ(split(PreTokenizerKind::Llama3, "\xE4\xBD\xA0\xE5\xA5\xBD\xE3\x80\x82 ok"),
            (Words{"\xE4\xBD\xA0\xE5\xA5\xBD", "\xE3\x80\x82", " ok"}));
  // DeepSeek-Coder cuts CJK runs out on their own, and digits one at a time.
  EXPECT_EQ(split(PreTokenizerKind::DeepseekCoder, "ab\xE4\xBD\xA0\xE5\xA5\xBD 12"),
            (Words{"ab", "\xE4\xBD\xA0\xE5\xA5\xBD", " ", "1", "2"}));
}

TEST(PreTokenizer, NonAsciiWhitespaceIsWhitespace) {
  // U+00A0 and U+3000 count as \s, as in llama.cpp.
  EXPECT_EQ(split(PreTokenizerKind::Gpt2, "a\xC2\xA0\xC2\xA0" "b"), (Words{"a", "\xC2\xA0", "\xC2\xA0", "b"}));
  EXPECT_EQ(split(PreTokenizerKind::Llama3, "a\xE3\x80\x80\n"), (Words{"a", "\xE3\x80\x80\n"}));
}

TEST(PreTokenizer, RegexesApplyInSequence) {
  // Falcon: punctuation runs first, then GPT-2 words, then ASCII digits in threes (which cuts
  // the word " 12345" the second regex made; the space left before them is a word of its own).
  EXPECT_EQ(split(PreTokenizerKind::Falcon, "x...y 12345"), (Words{"x", "...", "y", " ", "123", "45"}));
  EXPECT_EQ(split(PreTokenizerKind::Default, "12345"), (Words{"123", "45"}));
}

TEST(PreTokenizer, IllFormedUtf8BecomesReplacement) {
  EXPECT_EQ(split(PreTokenizerKind::Gpt2, "a\xFF"), (Words{"a", "\xEF\xBF\xBD"}));
  EXPECT_EQ(split(PreTokenizerKind::Gpt2, ""), Words{});
}

}  // namespace
}  // namespace morphserve
