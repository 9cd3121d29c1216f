#pragma once
// UTF-8 well-formedness (Unicode 15, table 3-7) for the tokenizer: splitting text into characters,
// and making model output valid UTF-8 no matter which bytes the model emits.
#include <cstddef>
#include <string>
#include <string_view>

namespace morphserve {

// Length of the well-formed character that starts at s[pos], or 0 when none starts there (an
// invalid byte, or a sequence that is cut short by the end of s or by a bad continuation byte).
size_t utf8_char_length(std::string_view s, size_t pos = 0);

// How many bytes at the end of s are the start of a character that more bytes could still
// complete (0..3). A streaming decoder holds these back until the next bytes arrive.
size_t utf8_incomplete_tail(std::string_view s);

bool is_valid_utf8(std::string_view s);

// Appends s to out with each maximal ill-formed subpart replaced by U+FFFD, the replacement
// practice Unicode recommends (and Python's, ICU's and WHATWG's decoders follow). Because a
// subpart never spans a point where a streaming decoder cuts (see utf8_incomplete_tail),
// sanitising chunk by chunk gives the same text as sanitising the whole.
void append_sanitized_utf8(std::string& out, std::string_view s);
std::string sanitize_utf8(std::string_view s);

// UTF-8 of U+FFFD REPLACEMENT CHARACTER.
inline constexpr std::string_view kUtf8Replacement = "\xEF\xBF\xBD";

}  // namespace morphserve
