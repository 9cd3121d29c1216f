// Byte-level BPE merges with a priority queue over a linked list of symbols per word: the pair
// of lowest merge rank goes first, the leftmost on ties, as in llama.cpp's llm_bigram_bpe.
#include "model/tokenizer_bpe.h"

#include <algorithm>
#include <array>
#include <limits>
#include <queue>
#include <string>

#include "core/error.h"
#include "model/tokenizer_vocab.h"

namespace morphserve {

namespace {

struct ByteTable {
  std::array<std::string, 256> chars;      // byte -> UTF-8 of its character
  std::array<int16_t, 512> bytes{};        // code point (< 512) -> byte, -1 when none

  ByteTable() {
    bytes.fill(-1);
    const auto printable = [](int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); };
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const int cp = printable(b) ? b : next++;
      std::string& s = chars[b];
      if (cp < 0x80) {
        s.push_back(static_cast<char>(cp));
      } else {
        s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      }
      bytes[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteTable& byte_table() {
  static const ByteTable table;
  return table;
}

// Length of the character at text[pos] by its lead byte, as llama.cpp's unicode_len_utf8.
size_t lead_length(std::string_view text, size_t pos) {
  const auto lead = static_cast<unsigned char>(text[pos]);
  const size_t length = lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
  return std::min(length, text.size() - pos);
}

struct BpeSymbol {
  int32_t prev;
  int32_t next;
  uint32_t offset;
  uint32_t length;  // 0 once merged into its left neighbour
};

struct BpeBigram {
  int32_t left;
  int32_t right;
  int32_t rank;
  uint32_t length;  // combined length when queued; a mismatch later means the entry is stale
};

struct BpeBigramOrder {
  bool operator()(const BpeBigram& a, const BpeBigram& b) const { return a.rank > b.rank || (a.rank == b.rank && a.left > b.left); }
};

}  // namespace

std::string_view gpt2_byte_char(unsigned char byte) {
  return byte_table().chars[byte];
}

std::string gpt2_token_bytes(std::string_view text) {
  const ByteTable& table = byte_table();
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const auto lead = static_cast<unsigned char>(text[pos]);
    int cp = -1;
    size_t length = 1;
    if (lead < 0x80) {
      cp = lead;
    } else if ((lead & 0xE0) == 0xC0 && pos + 1 < text.size() && (static_cast<unsigned char>(text[pos + 1]) & 0xC0) == 0x80) {
      cp = ((lead & 0x1F) << 6) | (static_cast<unsigned char>(text[pos + 1]) & 0x3F);
      length = 2;
    } else {
      length = lead_length(text, pos);
    }
    if (cp >= 0 && cp < static_cast<int>(table.bytes.size()) && table.bytes[cp] >= 0) {
      out.push_back(static_cast<char>(table.bytes[cp]));
    } else {
      out.append(text.substr(pos, length));
    }
    pos += length;
  }
  return out;
}

namespace {

const PreTokenizerSpec& spec_of(const Vocab& vocab) {
  const PreTokenizerSpec* spec = find_pre_tokenizer(vocab.pre);
  if (spec == nullptr) {
    fail<InvalidArgument>("the BPE pre-tokenizer '{}' is not supported (supported: {})", vocab.pre, supported_pre_tokenizer_names());
  }
  return *spec;
}

}  // namespace

BpeEncoder::BpeEncoder(const Vocab& vocab) : pre_(spec_of(vocab).kind), ignore_merges_(spec_of(vocab).ignore_merges) {
  // llama.cpp splits a merge at its first space after the first byte; symbols never contain a
  // space (it is spelled U+0120), so the merge text itself is the key of the pair.
  for (size_t i = 0; i < vocab.merges.size(); ++i) {
    const std::string& merge = vocab.merges[i];
    if (merge.size() < 3 || merge.find(' ', 1) == std::string::npos) continue;
    if (ranks_.find(merge) < 0) ranks_.insert_or_assign(merge, static_cast<int32_t>(i));
  }
}

int32_t BpeEncoder::rank(std::string_view left, std::string_view right, std::string& scratch) const {
  scratch.assign(left);
  scratch.push_back(' ');
  scratch.append(right);
  return ranks_.find(scratch);
}

void BpeEncoder::encode(std::string_view text, const PieceMap& pieces, std::vector<int32_t>& out) const {
  std::string word;
  std::string scratch;
  std::vector<BpeSymbol> symbols;
  std::priority_queue<BpeBigram, std::vector<BpeBigram>, BpeBigramOrder> queue;
  for (const std::string& raw : pre_.split(text)) {
    word.clear();
    for (const char c : raw) word.append(gpt2_byte_char(static_cast<unsigned char>(c)));
    if (word.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
      fail<InvalidArgument>("a word of {} bytes is too long to tokenize", word.size());
    }

    if (ignore_merges_) {
      if (const int32_t id = pieces.find(word); id >= 0) {
        out.push_back(id);
        continue;
      }
    }
    symbols.clear();
    for (size_t pos = 0; pos < word.size();) {
      const size_t length = lead_length(word, pos);
      const auto index = static_cast<int32_t>(symbols.size());
      symbols.push_back({index - 1, pos + length == word.size() ? -1 : index + 1, static_cast<uint32_t>(pos), static_cast<uint32_t>(length)});
      pos += length;
    }
    const auto text_of = [&](const BpeSymbol& s) { return std::string_view(word).substr(s.offset, s.length); };
    const auto add_bigram = [&](int32_t left, int32_t right) {
      if (left < 0 || right < 0) return;
      const int32_t r = rank(text_of(symbols[left]), text_of(symbols[right]), scratch);
      if (r >= 0) queue.push({left, right, r, symbols[left].length + symbols[right].length});
    };
    for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) add_bigram(i - 1, i);

    while (!queue.empty()) {
      const BpeBigram bigram = queue.top();
      queue.pop();
      BpeSymbol& left = symbols[bigram.left];
      BpeSymbol& right = symbols[bigram.right];
      // Either side may have been merged since this pair was queued.
      if (left.length == 0 || right.length == 0 || left.length + right.length != bigram.length) continue;
      left.length += right.length;
      right.length = 0;
      left.next = right.next;
      if (right.next >= 0) symbols[right.next].prev = bigram.left;
      add_bigram(left.prev, bigram.left);
      add_bigram(bigram.left, left.next);
    }

    if (symbols.empty()) continue;
    for (int32_t i = 0; i != -1; i = symbols[i].next) {
      const std::string_view piece = text_of(symbols[i]);
      if (const int32_t id = pieces.find(piece); id >= 0) {
        out.push_back(id);
        continue;
      }
      for (const char c : piece) {
        if (const int32_t id = pieces.find(std::string_view(&c, 1)); id >= 0) out.push_back(id);
      }
    }
  }
}

}  // namespace morphserve
