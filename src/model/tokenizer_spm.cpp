// SentencePiece BPE merges with a priority queue over a linked list of symbols: O(n log n) in
// the text length, so a megabyte of text tokenizes in a fraction of a second.
#include "model/tokenizer_spm.h"

#include <algorithm>
#include <limits>
#include <queue>

#include "core/error.h"
#include "model/utf8.h"

namespace morphserve {

namespace {

struct Symbol {
  int32_t prev;
  int32_t next;
  uint32_t offset;  // into the text
  uint32_t length;  // 0 once merged into its left neighbour
};

struct Bigram {
  int32_t left;
  int32_t right;
  float score;
  uint32_t length;  // combined length when queued; a mismatch later means the entry is stale
};

// Highest score first; on equal scores the leftmost pair, which is llama.cpp's order and decides
// ties such as "▁▁▁" (merge the first two spaces, not the last two).
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

class Session {
 public:
  Session(std::string_view text, const SpmTables& tables) : text_(text), tables_(tables) {}

  void run(std::vector<int32_t>& out) {
    split_characters();
    // Runs are merged one after another, each to completion, and emitted in order.
    int32_t run_start = 0;
    const auto n = static_cast<int32_t>(symbols_.size());
    for (int32_t i = 1; i <= n; ++i) {
      if (i < n && joinable(i - 1, i)) continue;
      symbols_[run_start].prev = -1;
      symbols_[i - 1].next = -1;
      for (int32_t j = run_start + 1; j < i; ++j) try_add_bigram(j - 1, j);
      merge_all();
      for (int32_t j = run_start; j != -1; j = symbols_[j].next) emit(symbols_[j], out);
      run_start = i;
    }
  }

 private:
  using Queue = std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder>;

  std::string_view symbol_text(const Symbol& s, uint32_t length) const { return text_.substr(s.offset, length); }

  bool joinable(int32_t left, int32_t right) const {
    return tables_.joinable.contains(JoinablePairs::key(symbol_text(symbols_[left], symbols_[left].length)),
                                     JoinablePairs::key(symbol_text(symbols_[right], symbols_[right].length)));
  }

  void split_characters() {
    symbols_.reserve(text_.size());
    for (size_t pos = 0; pos < text_.size();) {
      const size_t length = spm_symbol_length(text_, pos);
      const auto index = static_cast<int32_t>(symbols_.size());
      symbols_.push_back({index - 1, index + 1, static_cast<uint32_t>(pos), static_cast<uint32_t>(length)});
      pos += length;
    }
  }

  void try_add_bigram(int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const uint32_t length = symbols_[left].length + symbols_[right].length;
    const int32_t id = tables_.pieces.find(symbol_text(symbols_[left], length));
    if (id < 0) return;
    queue_.push({left, right, tables_.scores[id], length});
  }

  void merge_all() {
    while (!queue_.empty()) {
      const Bigram bigram = queue_.top();
      queue_.pop();
      Symbol& left = symbols_[bigram.left];
      Symbol& right = symbols_[bigram.right];
      // Either side may have been merged since this pair was queued.
      if (left.length == 0 || right.length == 0 || left.length + right.length != bigram.length) continue;
      left.length += right.length;
      right.length = 0;
      left.next = right.next;
      if (right.next >= 0) symbols_[right.next].prev = bigram.left;
      try_add_bigram(left.prev, bigram.left);
      try_add_bigram(bigram.left, left.next);
    }
  }

  // A merged symbol is always a piece; an unmerged character may not be, and then its bytes
  // stand in for it (llama.cpp's resegment reaches the same result).
  void emit(const Symbol& symbol, std::vector<int32_t>& out) const {
    const std::string_view text = symbol_text(symbol, symbol.length);
    if (const int32_t id = tables_.pieces.find(text); id >= 0) {
      out.push_back(id);
      return;
    }
    const auto byte_token = [&](char c) { return tables_.byte_tokens[static_cast<unsigned char>(c)]; };
    if (std::all_of(text.begin(), text.end(), [&](char c) { return byte_token(c) >= 0; })) {
      for (const char c : text) out.push_back(byte_token(c));
    } else if (tables_.unk >= 0) {
      out.push_back(tables_.unk);
    } else {
      std::string hex;
      for (const char c : text) hex += fmt::format("{}{:02X}", hex.empty() ? "" : " ", static_cast<unsigned char>(c));
      fail<InvalidArgument>("the text contains a character (bytes {}) that the vocabulary can represent neither as "
                            "a piece, nor as byte tokens, nor as an unknown token", hex);
    }
  }

  std::string_view text_;
  const SpmTables& tables_;
  std::vector<Symbol> symbols_;
  Queue queue_;
};

}  // namespace

size_t spm_symbol_length(std::string_view text, size_t pos) {
  const size_t length = utf8_char_length(text, pos);
  return length == 0 ? 1 : length;  // an ill-formed byte stands alone and later becomes a byte token
}

void JoinablePairs::insert(uint32_t left, uint32_t right) {
  if (left < kDense && right < kDense) {
    dense_.set(left * kDense + right);
  } else {
    other_.insert((static_cast<uint64_t>(left) << 32) | right);
  }
}

void JoinablePairs::add_piece(std::string_view piece) {
  uint32_t previous = 0;
  for (size_t pos = 0; pos < piece.size();) {
    const size_t length = spm_symbol_length(piece, pos);
    const uint32_t current = key(piece.substr(pos, length));
    if (pos > 0) insert(previous, current);
    previous = current;
    pos += length;
  }
}

void spm_tokenize(std::string_view text, const SpmTables& tables, std::vector<int32_t>& out) {
  if (text.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    fail<InvalidArgument>("a text of {} bytes is too long to tokenize in one piece", text.size());
  }
  Session(text, tables).run(out);
}

}  // namespace morphserve
