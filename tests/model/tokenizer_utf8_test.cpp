// The UTF-8 checks the tokenizer relies on, against Unicode's table 3-7 and its recommended
// U+FFFD substitution (one per maximal ill-formed subpart).
#include <string>

#include <gtest/gtest.h>

#include "model/utf8.h"

namespace morphserve {
namespace {

const std::string R = "\xEF\xBF\xBD";

TEST(TokenizerUtf8, CharLength) {
  EXPECT_EQ(utf8_char_length("a"), 1u);
  EXPECT_EQ(utf8_char_length("\xC3\xA9"), 2u);
  EXPECT_EQ(utf8_char_length("\xE2\x96\x81"), 3u);
  EXPECT_EQ(utf8_char_length("\xF0\x9F\x99\x82"), 4u);
  EXPECT_EQ(utf8_char_length("\xF4\x8F\xBF\xBF"), 4u);  // U+10FFFF
  EXPECT_EQ(utf8_char_length("\xF4\x90\x80\x80"), 0u);  // past U+10FFFF
  EXPECT_EQ(utf8_char_length("\xC0\xAF"), 0u);          // overlong
  EXPECT_EQ(utf8_char_length("\xE0\x80\xAF"), 0u);      // overlong
  EXPECT_EQ(utf8_char_length("\xED\xA0\x80"), 0u);      // surrogate
  EXPECT_EQ(utf8_char_length("\x80"), 0u);
  EXPECT_EQ(utf8_char_length("\xE2\x96"), 0u);          // cut short
  EXPECT_EQ(utf8_char_length(""), 0u);
  EXPECT_EQ(utf8_char_length("ab\xC3\xA9", 2), 2u);
}

TEST(TokenizerUtf8, IncompleteTail) {
  EXPECT_EQ(utf8_incomplete_tail(""), 0u);
  EXPECT_EQ(utf8_incomplete_tail("abc"), 0u);
  EXPECT_EQ(utf8_incomplete_tail("a\xF0"), 1u);
  EXPECT_EQ(utf8_incomplete_tail("a\xF0\x9F"), 2u);
  EXPECT_EQ(utf8_incomplete_tail("a\xF0\x9F\x99"), 3u);
  EXPECT_EQ(utf8_incomplete_tail("a\xF0\x9F\x99\x82"), 0u);
  EXPECT_EQ(utf8_incomplete_tail("a\xE0\x80"), 0u);   // E0 80 can never be completed
  EXPECT_EQ(utf8_incomplete_tail("a\xC0"), 0u);
  EXPECT_EQ(utf8_incomplete_tail("\x9F\x99"), 0u);    // continuation bytes without a lead
}

TEST(TokenizerUtf8, Sanitize) {
  EXPECT_EQ(sanitize_utf8("plain \xC3\xA9"), "plain \xC3\xA9");
  EXPECT_EQ(sanitize_utf8("\xFF"), R);
  EXPECT_EQ(sanitize_utf8("\xF0\x9F\x99"), R);             // one subpart, one U+FFFD
  EXPECT_EQ(sanitize_utf8("\xF0\x9F\x99" "A"), R + "A");
  EXPECT_EQ(sanitize_utf8("\xC0\xAF"), R + R);             // C0 is never a lead
  EXPECT_EQ(sanitize_utf8("\xED\xA0\x80"), R + R + R);     // surrogates: each byte
  EXPECT_EQ(sanitize_utf8("\xE2\x28\xA1"), R + "(" + R);
  EXPECT_TRUE(is_valid_utf8("\xE6\x97\xA5\xE6\x9C\xAC"));
  EXPECT_FALSE(is_valid_utf8("\xE6\x97"));
}

// Sanitising the part before the incomplete tail and then the rest equals sanitising the whole:
// the property StreamDecoder depends on. Checked over every split of many short byte strings.
TEST(TokenizerUtf8, SplitAtIncompleteTailIsConsistent) {
  const std::string alphabet = std::string("a\x80\x8F\x90\x9F\xA0\xBF\xC0\xC2\xDF\xE0\xE1\xED\xEF\xF0\xF4\xF5\xFF", 18);
  uint64_t checked = 0;
  for (size_t len = 1; len <= 4; ++len) {
    size_t total = 1;
    for (size_t i = 0; i < len; ++i) total *= alphabet.size();
    for (size_t code = 0; code < total; ++code) {
      std::string s;
      for (size_t i = 0, c = code; i < len; ++i, c /= alphabet.size()) s.push_back(alphabet[c % alphabet.size()]);
      // Stream the bytes one at a time the way StreamDecoder does.
      std::string pending, streamed;
      for (const char b : s) {
        pending.push_back(b);
        const size_t held = utf8_incomplete_tail(pending);
        streamed += sanitize_utf8(pending.substr(0, pending.size() - held));
        pending.erase(0, pending.size() - held);
      }
      streamed += sanitize_utf8(pending);
      ASSERT_EQ(streamed, sanitize_utf8(s));
      ++checked;
    }
  }
  EXPECT_GT(checked, 100000u);
}

}  // namespace
}  // namespace morphserve
