// UTF-8 validation and repair, byte ranges from Unicode table 3-7.
#include "model/utf8.h"

namespace morphserve {

namespace {

struct SequenceMatch {
  size_t matched;  // bytes at pos that are a prefix of some well-formed character (0 = bad lead)
  size_t needed;   // length of the character the lead byte announces
};

// The ranges of the second byte depend on the lead byte (they exclude overlong forms, surrogates
// and code points past U+10FFFF); every later byte is 80..BF.
SequenceMatch match_sequence(std::string_view s, size_t pos) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = byte(pos);
  if (lead < 0x80) return {1, 1};
  size_t needed = 0;
  unsigned char second_lo = 0x80, second_hi = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    needed = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    needed = 3;
    if (lead == 0xE0) second_lo = 0xA0;
    if (lead == 0xED) second_hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    needed = 4;
    if (lead == 0xF0) second_lo = 0x90;
    if (lead == 0xF4) second_hi = 0x8F;
  } else {
    return {0, 1};
  }
  size_t matched = 1;
  while (matched < needed && pos + matched < s.size()) {
    const unsigned char c = byte(pos + matched);
    const bool ok = matched == 1 ? (c >= second_lo && c <= second_hi) : (c >= 0x80 && c <= 0xBF);
    if (!ok) break;
    ++matched;
  }
  return {matched, needed};
}

}  // namespace

size_t utf8_char_length(std::string_view s, size_t pos) {
  if (pos >= s.size()) return 0;
  const SequenceMatch m = match_sequence(s, pos);
  return m.matched == m.needed ? m.needed : 0;
}

size_t utf8_incomplete_tail(std::string_view s) {
  // A lead byte always starts a new character or subpart, so only the last lead byte within
  // the final three bytes can begin an unfinished character.
  const size_t lookback = s.size() < 3 ? s.size() : 3;
  for (size_t k = 1; k <= lookback; ++k) {
    const size_t pos = s.size() - k;
    const auto c = static_cast<unsigned char>(s[pos]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    const SequenceMatch m = match_sequence(s, pos);
    return (m.matched == k && m.matched < m.needed) ? k : 0;
  }
  return 0;
}

bool is_valid_utf8(std::string_view s) {
  for (size_t pos = 0; pos < s.size();) {
    const size_t n = utf8_char_length(s, pos);
    if (n == 0) return false;
    pos += n;
  }
  return true;
}

void append_sanitized_utf8(std::string& out, std::string_view s) {
  out.reserve(out.size() + s.size());
  size_t pos = 0;
  while (pos < s.size()) {
    const SequenceMatch m = match_sequence(s, pos);
    if (m.matched == m.needed) {
      out.append(s.substr(pos, m.needed));
      pos += m.needed;
    } else {
      out.append(kUtf8Replacement);
      pos += m.matched == 0 ? 1 : m.matched;
    }
  }
}

std::string sanitize_utf8(std::string_view s) {
  std::string out;
  append_sanitized_utf8(out, s);
  return out;
}

}  // namespace morphserve
