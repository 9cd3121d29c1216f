// libFuzzer target: the SentencePiece and byte-level BPE tokenizers and the streaming detokenizer.
//
// Input: one flags byte, then the text (or, in ids mode, little-endian uint16 token ids).
//   bit 0  add_special (BOS/EOS)        bit 1  parse_special (control-token texts become tokens)
//   bit 2  keep the leading space       bit 3  the merge vocabulary instead of the byte-level one
//   bit 4  ids mode: decode arbitrary ids (0xFFFF and 0xFFFE stand for ids outside the vocabulary)
//
// Vocabularies need no download: the dummy model's byte-level one (dummy_model.h), and the same
// with merge pieces added so the BPE merge loop has work. MORPHSERVE_FUZZ_VOCAB=path/to/model.gguf
// uses that file's tokenizer instead (for example ../shared/data/models/stories260K.gguf, or a BPE
// one such as ../shared/data/models/vocab/ggml-vocab-deepseek-llm.gguf).
//
// Properties, from tokenizer.h and text_stream_decoder.h: every id is inside the vocabulary;
// decode() gives valid UTF-8; StreamDecoder gives valid UTF-8 in every chunk and, with its flush,
// exactly decode(); an id outside the vocabulary is an InvalidArgument. With byte fallback for
// every byte and no user-defined tokens, decode(encode(text)) is the text itself, except that
// U+2581 reads back as a space and ill-formed bytes as U+FFFD (tokenizer_roundtrip_test.cpp).
// For BPE: when every GPT-2 byte character and every merge result is a token, decode(encode(text))
// is the text whenever the text is valid UTF-8 (llama.cpp's own reading of ill-formed UTF-8 is
// not the sanitizer's, so other texts are only checked for the properties above).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"
#include "fuzz_check.h"
#include "model/dummy_model.h"
#include "model/gguf_file.h"
#include "model/tokenizer.h"
#include "model/utf8.h"

namespace morphserve::fuzz {
namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // U+2581, SentencePiece's escaped space

struct FuzzVocab {
  std::unique_ptr<Tokenizer> tokenizer;
  bool exact_round_trip = false;
};

// The dummy model's vocabulary plus pieces that merge: pairs over a small alphabet, a few words,
// runs of spaces, multi-byte characters and two ill-formed byte strings. Scores repeat, so ties
// (leftmost pair first) are exercised too. No piece is a prefix of a control token's text: a merge
// could otherwise build "<s>" out of plain text (as llama.cpp would), which decodes to nothing.
Vocab merge_vocab() {
  Vocab vocab = byte_level_vocab(260);
  std::vector<std::string> pieces;
  const std::vector<std::string> alphabet = {std::string(kSpaceSymbol), "a", "e", "n", "t", "h", "o", "s", "\xC3\xA9"};
  for (const std::string& a : alphabet) {
    for (const std::string& b : alphabet) pieces.push_back(a + b);
  }
  for (const char* word : {"the", "\xE2\x96\x81the", "\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81", "ten", "then", "stone",
                           "\xE2\x96\x81ne\xE2\x96\x81", "\xE6\x97\xA5\xE6\x9C\xAC", "\xC3", "\xFF\xFE"}) {
    pieces.emplace_back(word);
  }
  for (size_t i = 0; i < pieces.size(); ++i) {
    vocab.tokens.push_back(pieces[i]);
    vocab.types.push_back(TokenType::Normal);
    vocab.scores.push_back(-static_cast<float>(i % 17));
  }
  return vocab;
}

// Whether decode(encode(text)) must give the text back (see the file comment): every byte has a
// byte token (or a one-byte piece), U+2581 is a plain piece, and no user-defined token cuts text.
bool has_exact_bpe_round_trip(const Tokenizer& t) {
  for (int byte = 0; byte < 256; ++byte) {
    const int32_t id = t.piece_id(gpt2_byte_char(static_cast<unsigned char>(byte)));
    if (id < 0 || t.type(id) != TokenType::Normal) return false;
  }
  for (const std::string& merge : t.vocab().merges) {
    const size_t space = merge.find(' ', 1);
    if (space == std::string::npos) continue;
    const int32_t id = t.piece_id(merge.substr(0, space) + merge.substr(space + 1));
    if (id < 0 || t.type(id) != TokenType::Normal) return false;
  }
  return true;
}

bool has_exact_round_trip(const Tokenizer& t) {
  if (t.is_bpe()) return has_exact_bpe_round_trip(t);
  const int32_t space = t.piece_id(kSpaceSymbol);
  if (space < 0 || t.type(space) != TokenType::Normal) return false;
  for (int byte = 0; byte < 256; ++byte) {
    const int32_t token = t.piece_id(fmt::format("<0x{:02X}>", byte));
    const int32_t piece = t.piece_id(std::string(1, static_cast<char>(byte)));
    if (!(token >= 0 && t.type(token) == TokenType::Byte) && !(piece >= 0 && t.type(piece) == TokenType::Normal)) {
      return false;
    }
  }
  for (int32_t id = 0; id < t.vocab_size(); ++id) {
    if (t.type(id) == TokenType::UserDefined) return false;
  }
  return true;
}

FuzzVocab make_vocab(Vocab vocab) {
  FuzzVocab v;
  v.tokenizer = std::make_unique<Tokenizer>(std::move(vocab));
  v.exact_round_trip = has_exact_round_trip(*v.tokenizer);
  return v;
}

// MORPHSERVE_FUZZ_VOCAB's tokenizer, loaded once before the first input (LLVMFuzzerInitialize).
std::unique_ptr<FuzzVocab> g_file_vocab;

const FuzzVocab& byte_level() {
  static const FuzzVocab vocab = make_vocab(byte_level_vocab(dummy_config("tiny").vocab_size));
  return vocab;
}

const FuzzVocab& with_merges() {
  static const FuzzVocab vocab = make_vocab(merge_vocab());
  return vocab;
}

std::string replace_all(std::string_view text, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0;;) {
    const size_t hit = text.find(from, pos);
    out.append(text.substr(pos, hit == std::string_view::npos ? std::string_view::npos : hit - pos));
    if (hit == std::string_view::npos) return out;
    out.append(to);
    pos = hit + from.size();
  }
}

// Streams the ids one at a time; nullopt when one is outside the vocabulary (which must throw
// InvalidArgument, as decode() does).
std::optional<std::string> stream_decode(const Tokenizer& t, const std::vector<int32_t>& ids, bool strip) {
  StreamDecoder decoder(t, strip);
  std::string all;
  for (const int32_t id : ids) {
    std::string chunk;
    try {
      chunk = decoder.push(id);
    } catch (const InvalidArgument&) {
      check(id < 0 || id >= t.vocab_size(), "StreamDecoder::push refused an id inside the vocabulary");
      return std::nullopt;
    }
    check(id >= 0 && id < t.vocab_size(), "StreamDecoder::push accepted an id outside the vocabulary");
    check(is_valid_utf8(chunk), "a stream chunk is ill-formed UTF-8");
    all += chunk;
  }
  const std::string rest = decoder.flush();
  check(is_valid_utf8(rest), "the stream's flush is ill-formed UTF-8");
  return all + rest;
}

void check_decoding(const Tokenizer& t, const std::vector<int32_t>& ids, bool strip) {
  bool in_vocab = true;
  for (const int32_t id : ids) in_vocab = in_vocab && id >= 0 && id < t.vocab_size();
  std::string decoded;
  try {
    decoded = t.decode(ids, strip);
  } catch (const InvalidArgument&) {
    check(!in_vocab, "decode() refused ids inside the vocabulary");
    check(!stream_decode(t, ids, strip), "StreamDecoder accepted ids that decode() refused");
    return;
  }
  check(in_vocab, "decode() accepted an id outside the vocabulary");
  check(is_valid_utf8(decoded), "decode() produced ill-formed UTF-8");
  const std::optional<std::string> streamed = stream_decode(t, ids, strip);
  check(streamed.has_value(), "StreamDecoder refused ids that decode() accepted");
  check(*streamed == decoded, "StreamDecoder's text differs from decode()", decoded);
}

}  // namespace
}  // namespace morphserve::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using namespace morphserve;
  const char* path = std::getenv("MORPHSERVE_FUZZ_VOCAB");
  if (path == nullptr || *path == '\0') return 0;
  try {
    fuzz::g_file_vocab = std::make_unique<fuzz::FuzzVocab>(fuzz::make_vocab(vocab_from_gguf(GgufFile::open(path))));
  } catch (const Error& e) {
    // A bad path is a usage error, not a finding: stop before fuzzing starts.
    std::fprintf(stderr, "MORPHSERVE_FUZZ_VOCAB: %s\n", e.what());
    std::exit(1);
  }
  const fuzz::FuzzVocab& v = *fuzz::g_file_vocab;
  std::fprintf(stderr, "fuzz_tokenizer: the vocabulary of %s (%d tokens; exact round trip %s)\n", path,
               v.tokenizer->vocab_size(), v.exact_round_trip ? "checked" : "not checked");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace morphserve;
  using namespace morphserve::fuzz;
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  const bool add_special = flags & 1, parse_special = flags & 2, strip = !(flags & 4);
  const bool ids_mode = flags & 16;
  const FuzzVocab* chosen = g_file_vocab.get();
  if (chosen == nullptr) chosen = (flags & 8) ? &with_merges() : &byte_level();
  const Tokenizer& t = *chosen->tokenizer;

  if (ids_mode) {
    std::vector<int32_t> ids;
    for (size_t i = 1; i + 1 < size; i += 2) {
      const auto raw = static_cast<uint16_t>(data[i] | (data[i + 1] << 8));
      ids.push_back(raw == 0xFFFF ? -1 : raw == 0xFFFE ? t.vocab_size() : raw % t.vocab_size());
    }
    check_decoding(t, ids, strip);
    return 0;
  }

  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::vector<int32_t> ids;
  try {
    ids = t.encode(text, add_special, parse_special);
  } catch (const InvalidArgument&) {
    // Documented only for a character the vocabulary can represent no way at all.
    check(!chosen->exact_round_trip, "encode() refused text although every byte has a token");
    return 0;
  }
  for (const int32_t id : ids) check(id >= 0 && id < t.vocab_size(), "encode() produced an id outside the vocabulary");
  check_decoding(t, ids, strip);
  if (chosen->exact_round_trip && !parse_special && t.is_bpe()) {
    if (is_valid_utf8(text)) check(t.decode(ids, strip) == text, "decode(encode(text)) is not the text", std::string(text));
  } else if (chosen->exact_round_trip && !parse_special) {
    std::string expected = replace_all(text, kSpaceSymbol, " ");
    if (!strip && t.vocab().add_space_prefix && !text.empty()) expected.insert(0, " ");
    check(t.decode(ids, strip) == sanitize_utf8(expected), "decode(encode(text)) is not the text", expected);
  }
  return 0;
}
