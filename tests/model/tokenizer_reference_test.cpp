// The fast encoder (priority queue, text cut into independently merged runs, flat piece map)
// against a plain quadratic reference of the same SentencePiece rule, on random text built from
// the Llama-2 vocabulary's own pieces, where merges are plentiful and ties common.
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "model/gguf_file.h"
#include "model/tokenizer.h"
#include "model/utf8.h"
#include "test_data.h"

namespace morphserve {
namespace {

// Repeatedly merges the best adjacent pair (highest score, then leftmost) until none is a piece.
std::vector<int32_t> reference_encode(const Tokenizer& t, std::string text) {
  std::string escaped = "\xE2\x96\x81";
  for (const char c : text) {
    if (c == ' ') {
      escaped += "\xE2\x96\x81";
    } else {
      escaped.push_back(c);
    }
  }
  std::vector<std::string> symbols;
  for (size_t pos = 0; pos < escaped.size();) {
    size_t n = utf8_char_length(escaped, pos);
    if (n == 0) n = 1;
    symbols.push_back(escaped.substr(pos, n));
    pos += n;
  }
  for (;;) {
    int best = -1;
    float best_score = 0;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      const int32_t id = t.piece_id(symbols[i] + symbols[i + 1]);
      if (id < 0) continue;
      const float score = t.vocab().scores[id];
      if (best < 0 || score > best_score) {
        best = static_cast<int>(i);
        best_score = score;
      }
    }
    if (best < 0) break;
    symbols[best] += symbols[best + 1];
    symbols.erase(symbols.begin() + best + 1);
  }
  std::vector<int32_t> ids;
  for (const std::string& s : symbols) {
    if (const int32_t id = t.piece_id(s); id >= 0) {
      ids.push_back(id);
      continue;
    }
    for (const char c : s) ids.push_back(t.piece_id(fmt::format("<0x{:02X}>", static_cast<unsigned char>(c))));
  }
  return ids;
}

TEST(TokenizerReference, RandomTextMatchesQuadraticReference) {
  MORPHSERVE_REQUIRE_DATA(model, "models/ggml-vocab-llama-spm.gguf");
  const Tokenizer t(vocab_from_gguf(GgufFile::open(model.string())));
  std::mt19937 rng(1234);
  const std::vector<std::string> extras = {" ", "  ", "\n", "\t", "\xF0\x9F\xA6\x99", "\xFF", "\xE2\x82", "<s>"};
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    const int parts = 1 + static_cast<int>(rng() % 12);
    for (int p = 0; p < parts; ++p) {
      if (rng() % 4 == 0) {
        text += extras[rng() % extras.size()];
        continue;
      }
      const auto id = static_cast<int32_t>(rng() % t.vocab_size());
      if (t.vocab().types[id] == TokenType::Normal) text += t.token_to_piece(id);
    }
    if (text.empty()) continue;  // the reference always adds the dummy prefix
    ASSERT_EQ(t.encode(text, false), reference_encode(t, text)) << "text '" << text << "'";
  }
}

}  // namespace
}  // namespace morphserve
