// Encoding follows llama.cpp's tokenize: cut the text at special tokens; for SPM give each run
// of text the dummy-prefix space when it starts the text or follows a special token, escape
// spaces as U+2581, and merge pieces; for BPE hand each run to the byte-level BPE encoder.
// Decoding follows its token_to_piece.
#include "model/tokenizer.h"

#include <algorithm>
#include <cstdlib>

#include "core/error.h"
#include "model/utf8.h"

namespace morphserve {

namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

std::string unescape_spaces(std::string_view piece) {
  std::string out;
  out.reserve(piece.size());
  size_t pos = 0;
  while (pos < piece.size()) {
    const size_t hit = piece.find(kSpaceSymbol, pos);
    if (hit == std::string_view::npos) {
      out.append(piece.substr(pos));
      break;
    }
    out.append(piece.substr(pos, hit - pos));
    out.push_back(' ');
    pos = hit + kSpaceSymbol.size();
  }
  return out;
}

// Text of a token as it appears in output; "" for tokens that only steer the model.
std::string decoded_piece(const std::string& text, TokenType type, bool bpe) {
  switch (type) {
    case TokenType::Normal: return bpe ? gpt2_token_bytes(text) : unescape_spaces(text);
    case TokenType::UserDefined: return text;  // llama.cpp prints these verbatim, unescaped
    case TokenType::Byte: {
      const auto byte = static_cast<char>(std::strtol(text.substr(3, 2).c_str(), nullptr, 16));
      return std::string(1, byte);
    }
    case TokenType::Undefined:
    case TokenType::Unknown:
    case TokenType::Control:
    case TokenType::Unused: return {};
  }
  return {};
}

}  // namespace

Tokenizer::Tokenizer(Vocab vocab) : vocab_(std::move(vocab)) {
  if (std::string problem = vocab_problem(vocab_); !problem.empty()) fail<InvalidArgument>("unusable tokenizer: {}", problem);

  const bool bpe = vocab_.model == TokenizerModel::Bpe;
  if (bpe) bpe_ = std::make_shared<const BpeEncoder>(vocab_);
  const auto n = static_cast<int32_t>(vocab_.tokens.size());
  decoded_.reserve(vocab_.tokens.size());
  for (int32_t id = 0; id < n; ++id) {
    const std::string& text = vocab_.tokens[id];
    // A later duplicate wins, as in llama.cpp's token_to_id.
    if (!text.empty()) {
      pieces_.insert_or_assign(text, id);
      if (!bpe) joinable_.add_piece(text);
    }
    decoded_.push_back(decoded_piece(text, vocab_.types[id], bpe));
    const TokenType type = vocab_.types[id];
    if (!text.empty() && (type == TokenType::Control || type == TokenType::UserDefined || type == TokenType::Unknown)) {
      special_tokens_.push_back(id);
    }
  }
  // Longer special tokens are cut out first so that one containing another wins.
  std::stable_sort(special_tokens_.begin(), special_tokens_.end(), [&](int32_t a, int32_t b) {
    return vocab_.tokens[a].size() > vocab_.tokens[b].size();
  });

  for (int byte = 0; byte < 256; ++byte) {
    int32_t id = piece_id(fmt::format("<0x{:02X}>", byte));
    if (id < 0) id = piece_id(std::string(1, static_cast<char>(byte)));
    byte_tokens_[byte] = id;
  }

  end_of_generation_ = vocab_.end_of_generation;
  for (const int32_t id : {vocab_.eos, vocab_.eot, vocab_.eom}) {
    if (id >= 0) end_of_generation_.push_back(id);
  }
  std::sort(end_of_generation_.begin(), end_of_generation_.end());
  end_of_generation_.erase(std::unique(end_of_generation_.begin(), end_of_generation_.end()), end_of_generation_.end());
}

bool Tokenizer::is_end_of_generation(int32_t id) const {
  return std::binary_search(end_of_generation_.begin(), end_of_generation_.end(), id);
}

int32_t Tokenizer::piece_id(std::string_view piece) const {
  return pieces_.find(piece);
}

void Tokenizer::check_id(int32_t id) const {
  if (id < 0 || id >= vocab_size()) fail<InvalidArgument>("token id {} is outside the vocabulary of {} tokens", id, vocab_size());
}

TokenType Tokenizer::type(int32_t id) const {
  check_id(id);
  return vocab_.types[id];
}

std::vector<Tokenizer::Fragment> Tokenizer::split_on_special_tokens(std::string_view text, bool parse_special) const {
  std::vector<Fragment> fragments{{-1, 0, text.size()}};
  std::vector<Fragment> next;
  for (const int32_t id : special_tokens_) {
    const TokenType type = vocab_.types[id];
    if (!parse_special && (type == TokenType::Control || type == TokenType::Unknown)) continue;
    const std::string_view special = vocab_.tokens[id];
    next.clear();
    for (const Fragment& fragment : fragments) {
      if (fragment.token >= 0) {
        next.push_back(fragment);
        continue;
      }
      const size_t end = fragment.offset + fragment.length;
      const std::string_view window = text.substr(0, end);
      size_t pos = fragment.offset;
      for (size_t hit; (hit = window.find(special, pos)) != std::string_view::npos; pos = hit + special.size()) {
        if (hit > pos) next.push_back({-1, pos, hit - pos});
        next.push_back({id, 0, 0});
      }
      if (pos < end) next.push_back({-1, pos, end - pos});
    }
    fragments.swap(next);
  }
  return fragments;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 2);
  if (add_special && vocab_.add_bos) ids.push_back(vocab_.bos);

  if (!text.empty() && bpe_) {
    for (const Fragment& fragment : split_on_special_tokens(text, parse_special)) {
      if (fragment.token >= 0) {
        ids.push_back(fragment.token);
      } else {
        bpe_->encode(text.substr(fragment.offset, fragment.length), pieces_, ids);
      }
    }
  } else if (!text.empty()) {
    const SpmTables tables{pieces_, joinable_, vocab_.scores, byte_tokens_, vocab_.unk};
    std::string escaped;
    bool after_special = true;  // the text's start counts as following a special token
    for (const Fragment& fragment : split_on_special_tokens(text, parse_special)) {
      if (fragment.token >= 0) {
        ids.push_back(fragment.token);
        after_special = true;
        continue;
      }
      escaped.clear();
      escaped.reserve(fragment.length + fragment.length / 2 + kSpaceSymbol.size());
      if (vocab_.add_space_prefix && after_special) escaped.append(kSpaceSymbol);
      for (const char c : text.substr(fragment.offset, fragment.length)) {
        if (c == ' ') {
          escaped.append(kSpaceSymbol);
        } else {
          escaped.push_back(c);
        }
      }
      spm_tokenize(escaped, tables, ids);
      after_special = false;
    }
  }

  if (add_special && vocab_.add_eos) ids.push_back(vocab_.eos);
  return ids;
}

std::string Tokenizer::token_to_piece(int32_t id) const {
  check_id(id);
  return decoded_[id];
}

void Tokenizer::append_raw_piece(std::string& out, int32_t id, bool& strip_space) const {
  check_id(id);
  const std::string& piece = decoded_[id];
  if (piece.empty()) return;
  // Only a piece can carry the dummy prefix; a byte token for ' ' is a space the text really had.
  if (strip_space && piece.front() == ' ' && vocab_.types[id] != TokenType::Byte) {
    out.append(piece, 1);
  } else {
    out.append(piece);
  }
  strip_space = false;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool strip_leading_space) const {
  std::string raw;
  bool strip = strip_leading_space && vocab_.add_space_prefix;
  for (const int32_t id : ids) append_raw_piece(raw, id, strip);
  return is_valid_utf8(raw) ? raw : sanitize_utf8(raw);
}

}  // namespace morphserve
