#include "model/hf_tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <string_view>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/hf_config.h"
#include "model/strict_json.h"
#include "model/tokenizer_pretokenize.h"
#include "model/tokenizer_special_tokens.h"

namespace morphserve {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr std::string_view kSpace = "\xe2\x96\x81";  // U+2581, SentencePiece's space

// The Split regexes Hugging Face tokenizer.json files carry, by the llama.cpp pre-tokenizer name
// they correspond to (llama.cpp's converter tells them apart the same way, by what they split).
struct KnownSplit {
  std::string_view pre;
  std::string_view regex;
};
constexpr KnownSplit kKnownSplits[] = {
    {"llama-bpe",
     R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
    {"qwen2",
     R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
};

// Every object the pre-tokenizer tree holds (a Sequence's members, recursively).
void collect_pretokenizers(const json& node, std::vector<const json*>& out) {
  if (!node.is_object()) return;
  if (node.value("type", "") == "Sequence" && node.contains("pretokenizers") && node["pretokenizers"].is_array()) {
    for (const json& child : node["pretokenizers"]) collect_pretokenizers(child, out);
    return;
  }
  out.push_back(&node);
}

// The llama.cpp pre-tokenizer name for a byte-level BPE tokenizer.json's pre_tokenizer.
std::string pre_tokenizer_name(const json& root, const std::string& path) {
  const json pre_tokenizer = root.value("pre_tokenizer", json());  // kept: parts point into it
  std::vector<const json*> parts;
  collect_pretokenizers(pre_tokenizer, parts);
  bool byte_level = false;
  std::string split;
  for (const json* part : parts) {
    const std::string type = part->value("type", "");
    if (type == "ByteLevel") {
      byte_level = true;
      // A ByteLevel that splits by itself uses GPT-2's regex.
      if (part->value("use_regex", true) && split.empty()) split = "gpt-2";
    } else if (type == "Split") {
      const json& pattern = part->value("pattern", json::object());
      const std::string regex = pattern.is_object() ? pattern.value("Regex", "") : "";
      const auto known = std::find_if(std::begin(kKnownSplits), std::end(kKnownSplits),
                                      [&](const KnownSplit& k) { return k.regex == regex; });
      if (known == std::end(kKnownSplits)) {
        fail<ModelFileError>("{}: its pre-tokenizer regex is not one morphserve knows (Llama 3's or Qwen2's): {}", path,
                             regex.substr(0, 80));
      }
      split = known->pre;
    } else {
      fail<ModelFileError>("{}: pre-tokenizer type '{}' is not supported", path, type);
    }
  }
  if (!byte_level) fail<ModelFileError>("{}: a BPE tokenizer without byte_fallback needs a ByteLevel pre-tokenizer", path);
  return split.empty() ? "gpt-2" : split;
}

std::string merge_text(const json& merge, const std::string& path) {
  // Older files write "left right", newer ones ["left", "right"].
  if (merge.is_string()) return merge.get<std::string>();
  if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
    return merge[0].get<std::string>() + " " + merge[1].get<std::string>();
  }
  fail<ModelFileError>("{}: a merge is neither \"left right\" nor a pair of strings", path);
}

bool has_prepend_space(const json& normalizer) {
  if (!normalizer.is_object()) return false;
  if (normalizer.value("type", "") == "Prepend") return normalizer.value("prepend", "") == kSpace;
  if (normalizer.value("type", "") == "Sequence" && normalizer.contains("normalizers")) {
    for (const json& n : normalizer["normalizers"]) {
      if (has_prepend_space(n)) return true;
    }
  }
  return false;
}

}  // namespace

HfTokenizer read_hf_tokenizer(const std::string& path, const HfConfig& config) {
  const json root = parse_strict_json(read_model_text_file(path), path, 64);
  if (!root.is_object() || !root.contains("model") || !root["model"].is_object()) {
    fail<ModelFileError>("{} has no model object, so it is not a tokenizer.json", path);
  }
  const json& model = root["model"];
  if (model.value("type", "") != "BPE") {
    fail<ModelFileError>("{}: tokenizer model '{}' is not supported (BPE is)", path, model.value("type", "(none)"));
  }
  if (!model.contains("vocab") || !model["vocab"].is_object()) fail<ModelFileError>("{}: model.vocab is missing", path);
  const bool spm = model.value("byte_fallback", false);

  HfTokenizer out;
  Vocab& v = out.vocab;
  v.model = spm ? TokenizerModel::Spm : TokenizerModel::Bpe;
  int64_t n = 0;
  std::vector<std::pair<int64_t, std::string>> by_id;
  auto add_token = [&](const std::string& text, const json& id) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > 10'000'000) {
      fail<ModelFileError>("{}: token '{}' has id {}, not a small non-negative integer", path, text, id.dump());
    }
    by_id.emplace_back(id.get<int64_t>(), text);
    n = std::max(n, id.get<int64_t>() + 1);
  };
  for (const auto& [text, id] : model["vocab"].items()) add_token(text, id);
  std::map<int64_t, const json*> added;
  if (root.contains("added_tokens") && root["added_tokens"].is_array()) {
    for (const json& t : root["added_tokens"]) {
      if (!t.is_object() || !t.contains("id") || !t.contains("content") || !t["content"].is_string()) {
        fail<ModelFileError>("{}: an added token lacks its id or content", path);
      }
      add_token(t["content"].get<std::string>(), t["id"]);
      added[t["id"].get<int64_t>()] = &t;
    }
  }
  v.tokens.assign(static_cast<size_t>(n), "");
  v.types.assign(static_cast<size_t>(n), TokenType::Undefined);
  std::vector<bool> seen(static_cast<size_t>(n), false);
  for (const auto& [id, text] : by_id) {
    const size_t i = static_cast<size_t>(id);
    if (seen[i] && v.tokens[i] != text) {
      fail<ModelFileError>("{}: id {} is both '{}' and '{}'", path, id, v.tokens[i], text);
    }
    seen[i] = true;
    v.tokens[i] = text;
    v.types[i] = TokenType::Normal;
  }
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    if (!seen[i]) {
      v.tokens[i] = fmt::format("[PAD{}]", i);
      v.types[i] = TokenType::Unused;
    }
  }
  const std::string unk_text = model.value("unk_token", json()).is_string() ? model["unk_token"].get<std::string>() : "";
  for (const auto& [id, t] : added) {
    v.types[static_cast<size_t>(id)] = t->value("special", false) ? TokenType::Control : TokenType::UserDefined;
  }
  v.unk = -1;
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    if (!unk_text.empty() && v.tokens[i] == unk_text) {
      v.types[i] = TokenType::Unknown;
      v.unk = static_cast<int32_t>(i);
    }
    const std::string& t = v.tokens[i];
    if (spm && t.size() == 6 && t.starts_with("<0x") && t.ends_with(">")) v.types[i] = TokenType::Byte;
  }

  std::vector<std::string> merges;
  if (model.contains("merges") && model["merges"].is_array()) {
    for (const json& m : model["merges"]) merges.push_back(merge_text(m, path));
  }
  v.scores.assign(v.tokens.size(), 0.0f);
  if (spm) {
    // SentencePiece merges the pair whose result scores highest; BPE the pair ranked first. Score
    // each token by minus the rank of the first merge that makes it, so both agree. Tokens no merge
    // makes (single characters, bytes) keep a score below every merged one.
    std::unordered_map<std::string, size_t> id_of;
    for (size_t i = 0; i < v.tokens.size(); ++i) id_of.emplace(v.tokens[i], i);
    std::vector<bool> scored(v.tokens.size(), false);
    for (size_t r = 0; r < merges.size(); ++r) {
      const size_t space = merges[r].find(' ');
      if (space == std::string::npos) fail<ModelFileError>("{}: merge '{}' has no space", path, merges[r]);
      const std::string merged = merges[r].substr(0, space) + merges[r].substr(space + 1);
      const auto it = id_of.find(merged);
      if (it == id_of.end() || scored[it->second]) continue;
      scored[it->second] = true;
      v.scores[it->second] = -static_cast<float>(r);
    }
    for (size_t i = 0; i < v.tokens.size(); ++i) {
      if (!scored[i]) v.scores[i] = -static_cast<float>(merges.size()) - 1.0f;
    }
    v.add_space_prefix = has_prepend_space(root.value("normalizer", json()));
  } else {
    v.merges = std::move(merges);
    v.pre = pre_tokenizer_name(root, path);
    v.add_space_prefix = false;
  }

  v.bos = config.bos_token_id.empty() ? -1 : static_cast<int32_t>(config.bos_token_id[0]);
  v.eos = config.eos_token_id.empty() ? -1 : static_cast<int32_t>(config.eos_token_id[0]);
  for (size_t i = 1; i < config.eos_token_id.size(); ++i) {
    v.end_of_generation.push_back(static_cast<int32_t>(config.eos_token_id[i]));
  }
  if (spm) {
    v.add_bos = true;
  } else {
    const PreTokenizerSpec* spec = find_pre_tokenizer(v.pre);
    v.add_bos = spec && spec->add_bos;
  }
  v.add_eos = false;
  const fs::path config_path = fs::path(path).parent_path() / "tokenizer_config.json";
  if (fs::exists(config_path)) {
    const json tc = parse_strict_json(read_model_text_file(config_path), config_path.string(), 64);
    if (tc.is_object()) {
      if (tc.contains("add_bos_token") && tc["add_bos_token"].is_boolean()) v.add_bos = tc["add_bos_token"].get<bool>();
      if (tc.contains("add_eos_token") && tc["add_eos_token"].is_boolean()) v.add_eos = tc["add_eos_token"].get<bool>();
      if (tc.contains("chat_template") && tc["chat_template"].is_string()) {
        out.chat_template = tc["chat_template"].get<std::string>();
      }
    }
  }
  if (v.add_bos && v.bos < 0) v.add_bos = false;  // nothing to add (Qwen2 has no BOS)
  resolve_special_tokens(v, {});
  if (std::string problem = vocab_problem(v); !problem.empty()) {
    fail<ModelFileError>("{}: unusable tokenizer: {}", path, problem);
  }
  return out;
}

void pad_vocab(Vocab& vocab, int n) {
  for (int i = static_cast<int>(vocab.tokens.size()); i < n; ++i) {
    vocab.tokens.push_back(fmt::format("[PAD{}]", i));
    vocab.types.push_back(TokenType::Unused);
    vocab.scores.push_back(vocab.scores.empty() ? 0.0f : std::min(0.0f, *std::min_element(vocab.scores.begin(), vocab.scores.end())));
  }
}

std::string hf_tokenizer_json(const Vocab& v) {
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  nlohmann::ordered_json added = nlohmann::ordered_json::array();
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    const TokenType type = v.types[i];
    if (type == TokenType::Control || type == TokenType::UserDefined || type == TokenType::Unused ||
        type == TokenType::Unknown) {
      added.push_back({{"id", i}, {"content", v.tokens[i]}, {"single_word", false}, {"lstrip", false},
                       {"rstrip", false}, {"normalized", false}, {"special", type != TokenType::UserDefined}});
    }
    if (type != TokenType::Control && type != TokenType::UserDefined && type != TokenType::Unused) {
      vocab[v.tokens[i]] = i;
    }
  }
  nlohmann::ordered_json merges = nlohmann::ordered_json::array();
  nlohmann::ordered_json root;
  root["version"] = "1.0";
  root["truncation"] = nullptr;
  root["padding"] = nullptr;
  root["added_tokens"] = added;
  if (v.model == TokenizerModel::Spm) {
    // Merges from the scores, best first: every split of a token into two tokens, as Hugging
    // Face's SentencePiece converter derives them.
    std::unordered_map<std::string, size_t> id_of;
    for (size_t i = 0; i < v.tokens.size(); ++i) id_of.emplace(v.tokens[i], i);
    std::vector<size_t> order;
    for (size_t i = 0; i < v.tokens.size(); ++i) {
      if (v.types[i] == TokenType::Normal) order.push_back(i);
    }
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v.scores[a] > v.scores[b]; });
    for (size_t id : order) {
      const std::string& t = v.tokens[id];
      for (size_t cut = 1; cut < t.size(); ++cut) {
        if ((static_cast<unsigned char>(t[cut]) & 0xC0) == 0x80) continue;  // inside a character
        const auto left = id_of.find(t.substr(0, cut));
        const auto right = id_of.find(t.substr(cut));
        if (left == id_of.end() || right == id_of.end()) continue;
        merges.push_back(t.substr(0, cut) + " " + t.substr(cut));
      }
    }
    nlohmann::ordered_json normalizers = nlohmann::ordered_json::array();
    if (v.add_space_prefix) normalizers.push_back({{"type", "Prepend"}, {"prepend", std::string(kSpace)}});
    normalizers.push_back({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", std::string(kSpace)}});
    root["normalizer"] = {{"type", "Sequence"}, {"normalizers", normalizers}};
    root["pre_tokenizer"] = nullptr;
  } else {
    for (const std::string& m : v.merges) merges.push_back(m);
    const std::string pre = v.pre.empty() ? "default" : v.pre;
    const auto known = std::find_if(std::begin(kKnownSplits), std::end(kKnownSplits),
                                    [&](const KnownSplit& k) { return k.pre == pre; });
    root["normalizer"] = nullptr;
    if (known != std::end(kKnownSplits)) {
      root["pre_tokenizer"] = {
          {"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"}, {"pattern", {{"Regex", std::string(known->regex)}}}, {"behavior", "Isolated"},
             {"invert", false}},
            {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}}}};
    } else if (pre == "gpt-2" || pre == "default") {
      root["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                               {"use_regex", true}};
    } else {
      fail<InvalidArgument>("a tokenizer.json cannot express the '{}' pre-tokenizer (llama-bpe, qwen2 and gpt-2 can)",
                            pre);
    }
  }
  root["model"] = {{"type", "BPE"},
                   {"dropout", nullptr},
                   {"unk_token", v.unk >= 0 ? nlohmann::ordered_json(v.tokens[static_cast<size_t>(v.unk)]) : nullptr},
                   {"byte_fallback", v.model == TokenizerModel::Spm},
                   {"ignore_merges", v.pre == "llama-bpe"},
                   {"vocab", vocab},
                   {"merges", merges}};
  return root.dump(1) + "\n";
}

}  // namespace morphserve
