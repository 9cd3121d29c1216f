// Pre-tokenizer regexes run with PCRE2 so that they cut text exactly where llama.cpp's
// unicode_regex_split does. llama.cpp runs most of them with std::regex, where \s is ASCII
// whitespace and every non-ASCII whitespace character has been replaced by \v beforehand; its
// hand-written GPT-2 and Llama-3 splitters follow the regex with the same whitespace set. So here
// too the regexes see the text with non-ASCII whitespace as \v, and PCRE2 runs in UTF mode
// without UCP (\s ASCII only; \p{L}, \p{N}, \p{P} are Unicode properties either way). The words
// handed on keep the original characters.
#include "model/tokenizer_pretokenize.h"

#include <algorithm>
#include <array>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/error.h"

namespace morphserve {

namespace {

constexpr uint32_t kReplacement = 0xFFFD;

// llama.cpp's reading of UTF-8 (unicode_cpt_from_utf8): the lead byte decides the length, the
// continuation bytes must be 10xxxxxx and present; anything else is one U+FFFD for that byte.
std::vector<uint32_t> lenient_code_points(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  const auto byte = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(s[i])); };
  const auto continuation = [&](size_t i) { return i < s.size() && (byte(i) & 0xC0) == 0x80; };
  for (size_t pos = 0; pos < s.size();) {
    const uint32_t lead = byte(pos);
    if (lead < 0x80) {
      out.push_back(lead);
      pos += 1;
    } else if ((lead & 0x40) == 0) {
      out.push_back(kReplacement);
      pos += 1;
    } else if ((lead & 0x20) == 0 && continuation(pos + 1)) {
      out.push_back(((lead & 0x1F) << 6) | (byte(pos + 1) & 0x3F));
      pos += 2;
    } else if ((lead & 0x20) != 0 && (lead & 0x10) == 0 && continuation(pos + 1) && continuation(pos + 2)) {
      out.push_back(((lead & 0x0F) << 12) | ((byte(pos + 1) & 0x3F) << 6) | (byte(pos + 2) & 0x3F));
      pos += 3;
    } else if ((lead & 0x30) == 0x30 && (lead & 0x08) == 0 && continuation(pos + 1) && continuation(pos + 2) &&
               continuation(pos + 3)) {
      const uint32_t cp = ((lead & 0x07) << 18) | ((byte(pos + 1) & 0x3F) << 12) | ((byte(pos + 2) & 0x3F) << 6) |
                          (byte(pos + 3) & 0x3F);
      // llama.cpp cannot write such a code point back and throws; it stands for U+FFFD here.
      out.push_back(cp <= 0x10FFFF ? cp : kReplacement);
      pos += 4;
    } else {
      out.push_back(kReplacement);
      pos += 1;
    }
  }
  return out;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Unicode's White_Space property beyond ASCII (llama.cpp's unicode_set_whitespace).
bool is_non_ascii_whitespace(uint32_t cp) {
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

// The GPT-2 regex; llama.cpp's (and its hand-written splitter) lacks the final \s+, which
// changes nothing: a lone whitespace character it leaves unmatched is a piece anyway.
constexpr std::string_view kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s+(?!\S)|\s+)";
// Llama 3's tokenizer.json regex, with llama.cpp's spelling of (?i:'s|...) as explicit classes.
constexpr std::string_view kLlama3 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}++|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Qwen2: as Llama 3, but digits one at a time.
constexpr std::string_view kQwen2 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}++|\p{N}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// DeepSeek LLM's Latin, Greek, Cyrillic, ... letters class, written as code points.
constexpr std::string_view kDeepseekLetters =
    R"(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF})"
    R"(\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1})"
    R"(\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5})"
    R"(\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A})"
    R"(\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B})"
    R"(\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC})"
    R"(\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107})"
    R"(\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134})"
    R"(\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4})"
    R"(\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787})"
    R"(\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A})"
    R"(\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2})"
    R"(\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+)";
constexpr std::string_view kDeepseekPunctuation = R"(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)";
constexpr std::string_view kCjkHangul = R"([\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+)";

std::vector<std::string_view> regexes_of(PreTokenizerKind kind) {
  switch (kind) {
    case PreTokenizerKind::Default: return {R"([\p{P}$+<=>^~|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"};
    case PreTokenizerKind::Gpt2: return {kGpt2};
    case PreTokenizerKind::Llama3: return {kLlama3};
    case PreTokenizerKind::Qwen2: return {kQwen2};
    case PreTokenizerKind::Falcon: return {R"([\p{P}$+<=>^~|`]+)", kGpt2, "[0-9][0-9][0-9]"};
    case PreTokenizerKind::DeepseekLlm:
      // $ is std::regex's end of the piece, \z in PCRE2.
      return {"[\\r\\n]", kDeepseekLetters, kDeepseekPunctuation, R"(\s+\z)", kCjkHangul, R"(\p{N}+)"};
    case PreTokenizerKind::DeepseekCoder: return {"[\\r\\n]", R"(\s?\p{L}+)", R"(\s?\p{P}+)", kCjkHangul, R"(\p{N})"};
    case PreTokenizerKind::Starcoder: return {R"(\p{N})", kGpt2};
  }
  return {};
}

// Names as llama.cpp's llama_vocab::impl::load maps them (the subset whose regexes are here).
constexpr std::array kSpecs{
    PreTokenizerSpec{"default", PreTokenizerKind::Default, false, false},
    PreTokenizerSpec{"gpt-2", PreTokenizerKind::Gpt2, false, false},
    PreTokenizerSpec{"phi-2", PreTokenizerKind::Gpt2, false, false},
    PreTokenizerSpec{"mpt", PreTokenizerKind::Gpt2, false, false},
    PreTokenizerSpec{"olmo", PreTokenizerKind::Gpt2, false, false},
    PreTokenizerSpec{"jais", PreTokenizerKind::Gpt2, false, false},
    PreTokenizerSpec{"exaone4", PreTokenizerKind::Gpt2, false, false},
    PreTokenizerSpec{"llama3", PreTokenizerKind::Llama3, true, true},
    PreTokenizerSpec{"llama-v3", PreTokenizerKind::Llama3, true, true},
    PreTokenizerSpec{"llama-bpe", PreTokenizerKind::Llama3, true, true},
    PreTokenizerSpec{"falcon3", PreTokenizerKind::Llama3, true, true},
    PreTokenizerSpec{"dbrx", PreTokenizerKind::Llama3, false, false},
    PreTokenizerSpec{"smaug-bpe", PreTokenizerKind::Llama3, false, false},
    PreTokenizerSpec{"qwen2", PreTokenizerKind::Qwen2, false, false},
    PreTokenizerSpec{"deepseek-r1-qwen", PreTokenizerKind::Qwen2, false, false},
    PreTokenizerSpec{"stablelm2", PreTokenizerKind::Qwen2, false, false},
    PreTokenizerSpec{"megrez", PreTokenizerKind::Qwen2, false, false},
    PreTokenizerSpec{"falcon", PreTokenizerKind::Falcon, false, false},
    PreTokenizerSpec{"deepseek-llm", PreTokenizerKind::DeepseekLlm, false, false},
    PreTokenizerSpec{"deepseek-coder", PreTokenizerKind::DeepseekCoder, false, false},
    PreTokenizerSpec{"starcoder", PreTokenizerKind::Starcoder, false, false},
    PreTokenizerSpec{"refact", PreTokenizerKind::Starcoder, false, false},
    PreTokenizerSpec{"command-r", PreTokenizerKind::Starcoder, false, false},
    PreTokenizerSpec{"smollm", PreTokenizerKind::Starcoder, false, false},
    PreTokenizerSpec{"codeshell", PreTokenizerKind::Starcoder, false, false},
    PreTokenizerSpec{"exaone", PreTokenizerKind::Starcoder, false, false},
    PreTokenizerSpec{"minerva-7b", PreTokenizerKind::Starcoder, false, false},
};

}  // namespace

struct PreTokenizer::Regex {
  pcre2_code* code = nullptr;
  bool jit = false;

  explicit Regex(std::string_view pattern) {
    int error = 0;
    PCRE2_SIZE error_offset = 0;
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_NO_UTF_CHECK,
                         &error, &error_offset, nullptr);
    if (code == nullptr) {
      std::array<PCRE2_UCHAR, 256> message{};
      pcre2_get_error_message(error, message.data(), message.size());
      fail<InvalidArgument>("pre-tokenizer regex '{}' does not compile at offset {}: {}", pattern, error_offset,
                            reinterpret_cast<const char*>(message.data()));
    }
    jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;  // falls back to the interpreter where JIT is absent
  }
  ~Regex() { pcre2_code_free(code); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Start and end byte offsets of the first match at or after start in subject, or false.
  bool find(std::string_view subject, size_t start, pcre2_match_data* data, size_t& begin, size_t& end) const {
    const auto run = [&](uint32_t options) {
      return pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), start, options, data, nullptr);
    };
    int rc = run(PCRE2_NO_UTF_CHECK);
    // JIT's stack is small; a long run of one character class may need the interpreter.
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) rc = run(PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT);
    if (rc == PCRE2_ERROR_NOMATCH) return false;
    if (rc < 0) {
      std::array<PCRE2_UCHAR, 256> message{};
      pcre2_get_error_message(rc, message.data(), message.size());
      fail<InvalidArgument>("pre-tokenizer regex failed on a text of {} bytes: {}", subject.size(),
                            reinterpret_cast<const char*>(message.data()));
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data);
    begin = ovector[0];
    end = ovector[1];
    return true;
  }
};

const PreTokenizerSpec* find_pre_tokenizer(std::string_view name) {
  if (name.empty()) name = "default";
  for (const PreTokenizerSpec& spec : kSpecs) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

std::string supported_pre_tokenizer_names() {
  std::string names;
  for (const PreTokenizerSpec& spec : kSpecs) {
    if (!names.empty()) names += ", ";
    names += spec.name;
  }
  return names;
}

PreTokenizer::PreTokenizer(PreTokenizerKind kind) {
  for (const std::string_view pattern : regexes_of(kind)) regexes_.push_back(std::make_shared<const Regex>(pattern));
}

std::vector<std::string> PreTokenizer::split(std::string_view text) const {
  const std::vector<uint32_t> cps = lenient_code_points(text);
  const size_t n = cps.size();
  // What the regexes see, and where each code point starts in it.
  std::string seen;
  seen.reserve(text.size() + 8);
  std::vector<size_t> seen_at(n + 1);
  for (size_t i = 0; i < n; ++i) {
    seen_at[i] = seen.size();
    const uint32_t cp = cps[i];
    if (cp >= 0x80 && is_non_ascii_whitespace(cp)) {
      seen.push_back('\v');
    } else {
      append_utf8(seen, (cp >= 0xD800 && cp <= 0xDFFF) ? kReplacement : cp);  // PCRE2 rejects surrogates
    }
  }
  seen_at[n] = seen.size();
  const auto index_of = [&](size_t byte) {
    return static_cast<size_t>(std::lower_bound(seen_at.begin(), seen_at.end(), byte) - seen_at.begin());
  };

  // Pieces as [begin, end) code point ranges.
  std::vector<std::pair<size_t, size_t>> pieces;
  if (n > 0) pieces.emplace_back(0, n);
  std::vector<std::pair<size_t, size_t>> next;
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> data(pcre2_match_data_create(1, nullptr),
                                                                            &pcre2_match_data_free);
  for (const auto& regex : regexes_) {
    next.clear();
    for (const auto& [piece_begin, piece_end] : pieces) {
      const std::string_view subject =
          std::string_view(seen).substr(seen_at[piece_begin], seen_at[piece_end] - seen_at[piece_begin]);
      size_t at = 0;  // bytes into subject: the end of the last match
      size_t search = 0;
      size_t begin = 0, end = 0;
      while (search <= subject.size() && regex->find(subject, search, data.get(), begin, end)) {
        if (end == begin) {  // no regex here matches empty text; step over one if one ever does
          if (begin >= subject.size()) break;
          search = seen_at[index_of(seen_at[piece_begin] + begin) + 1] - seen_at[piece_begin];
          continue;
        }
        if (begin > at) next.emplace_back(index_of(seen_at[piece_begin] + at), index_of(seen_at[piece_begin] + begin));
        next.emplace_back(index_of(seen_at[piece_begin] + begin), index_of(seen_at[piece_begin] + end));
        at = search = end;
      }
      if (at < subject.size()) next.emplace_back(index_of(seen_at[piece_begin] + at), piece_end);
    }
    pieces.swap(next);
  }

  std::vector<std::string> words;
  words.reserve(pieces.size());
  for (const auto& [begin, end] : pieces) {
    std::string& word = words.emplace_back();
    for (size_t i = begin; i < end; ++i) append_utf8(word, cps[i]);
  }
  return words;
}

}  // namespace morphserve
