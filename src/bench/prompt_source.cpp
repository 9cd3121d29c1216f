#include "bench/prompt_source.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/error.h"

namespace morphserve::bench {

namespace {

constexpr size_t kRandomStreamTokens = 1 << 16;
constexpr size_t kMaxAlphabet = 4096;

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

std::string read_text_file(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail<InvalidArgument>("--prompt-text {}: cannot read the file", path);
  std::string text(max_bytes, '\0');
  in.read(text.data(), static_cast<std::streamsize>(max_bytes));
  text.resize(static_cast<size_t>(in.gcount()));
  // Cut a multi-byte character the size limit split, so the text stays valid UTF-8.
  size_t end = text.size();
  while (end > 0 && (static_cast<unsigned char>(text[end - 1]) & 0xC0) == 0x80) --end;
  if (end > 0 && static_cast<unsigned char>(text[end - 1]) >= 0xC0) text.resize(end - 1);
  if (text.empty()) fail<InvalidArgument>("--prompt-text {}: the file is empty", path);
  return text;
}

// Common English words, each about one token in Llama-style vocabularies (with its leading space).
std::string filler_text(uint64_t seed, size_t words) {
  static constexpr const char* kWords[] = {
      "the", "of", "and", "to", "in", "is", "was", "for", "on", "that", "with", "as", "it", "by", "at", "from",
      "his", "her", "he", "she", "they", "we", "you", "one", "all", "were", "be", "this", "are", "had", "not", "but",
      "time", "day", "year", "way", "man", "world", "life", "hand", "part", "child", "eye", "place", "work", "week",
      "case", "point", "home", "water", "room", "mother", "area", "money", "story", "fact", "month", "right", "study",
      "book", "job", "word", "house", "side", "night", "city", "line", "end", "game", "door", "food", "tree", "sun"};
  constexpr size_t kCount = sizeof(kWords) / sizeof(kWords[0]);
  std::string text;
  uint64_t state = seed;
  for (size_t i = 0; i < words; ++i) {
    state = splitmix64(state);
    if (i > 0) text += (i % 13 == 0) ? ". " : " ";
    text += kWords[state % kCount];
  }
  return text + ".";
}

std::vector<int32_t> token_array(const nlohmann::json& tokens) {
  std::vector<int32_t> ids;
  ids.reserve(tokens.size());
  for (const nlohmann::json& t : tokens) {
    // llama-server answers {"id", "piece"} objects when asked for pieces.
    const nlohmann::json& id = t.is_object() && t.contains("id") ? t["id"] : t;
    if (!id.is_number_integer()) return {};
    ids.push_back(id.get<int32_t>());
  }
  return ids;
}

std::string dump_text(const nlohmann::json& body) {
  // Replace rather than throw on invalid UTF-8 in a user's text file.
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::unique_ptr<httplib::Client> setup_client(const ServerUrl& url, const std::string& api_key) {
  auto client = make_client(url, std::chrono::seconds(120), api_key);
  client->set_keep_alive(true);  // many small requests in a row before the run
  return client;
}

}  // namespace

PromptFormat parse_prompt_format(const std::string& name) {
  if (name == "ids") return PromptFormat::Ids;
  if (name == "text") return PromptFormat::Text;
  fail<InvalidArgument>("--prompt-format {}: expected ids or text", name);
}

std::optional<std::vector<int32_t>> tokenize_remote(httplib::Client& client, const ServerUrl& url,
                                                    const std::string& model, const std::string& text) {
  const nlohmann::json shapes[] = {
      {{"model", model}, {"prompt", text}, {"add_special_tokens", false}},  // vLLM, morphserve
      {{"content", text}, {"add_special", false}},                          // llama-server
  };
  for (const nlohmann::json& body : shapes) {
    auto result = client.Post(url.base_path + "/tokenize", dump_text(body), "application/json");
    if (!result || result->status != 200) continue;
    const nlohmann::json doc = nlohmann::json::parse(result->body, nullptr, false);
    if (!doc.is_object() || !doc.contains("tokens") || !doc["tokens"].is_array()) continue;
    std::vector<int32_t> ids = token_array(doc["tokens"]);
    if (!ids.empty() || doc["tokens"].empty()) return ids;
  }
  return std::nullopt;
}

std::optional<std::string> detokenize_remote(httplib::Client& client, const ServerUrl& url, const std::string& model,
                                             const std::vector<int32_t>& ids) {
  const nlohmann::json body = {{"model", model}, {"tokens", ids}};
  auto result = client.Post(url.base_path + "/detokenize", body.dump(), "application/json");
  if (!result || result->status != 200) return std::nullopt;
  const nlohmann::json doc = nlohmann::json::parse(result->body, nullptr, false);
  if (!doc.is_object()) return std::nullopt;
  for (const char* key : {"prompt", "content"}) {
    if (doc.contains(key) && doc[key].is_string()) return doc[key].get<std::string>();
  }
  return std::nullopt;
}

PromptSource::PromptSource(std::vector<int32_t> stream, PromptSourceOptions options)
    : options_(std::move(options)), stream_(std::move(stream)) {
  // Derived from the seed, so every run with one seed sends the same prompts (the arms of an
  // experiment must be compared on identical requests).
  salt_ = splitmix64(options_.seed ^ 0x5A17C0DE5A17C0DEULL);
  const std::set<int32_t> distinct(stream_.begin(), stream_.end());
  for (int32_t id : distinct) {
    if (alphabet_.size() >= kMaxAlphabet) break;
    alphabet_.push_back(id);
  }
  description_ = fmt::format("{} token ids", stream_.size());
}

PromptSource PromptSource::prepare(const PromptSourceOptions& options, const ServerUrl& url, const std::string& api_key,
                                   const std::string& model) {
  auto client = setup_client(url, api_key);
  if (options.format == PromptFormat::Ids) {
    if (options.text_path.empty()) {
      if (options.vocab_size < 8) fail<InvalidArgument>("--vocab-size {}: too small for prompts", options.vocab_size);
      // Skip the lowest ids, where most vocabularies keep their special and control tokens.
      const int64_t low = std::min<int64_t>(100, options.vocab_size / 4);
      std::vector<int32_t> stream(kRandomStreamTokens);
      uint64_t state = options.seed;
      for (int32_t& id : stream) {
        state = splitmix64(state);
        id = static_cast<int32_t>(low + static_cast<int64_t>(state % static_cast<uint64_t>(options.vocab_size - low)));
      }
      PromptSource source(std::move(stream), options);
      source.description_ = fmt::format("pseudo-random token ids in [{}, {}) from seed {}", low, options.vocab_size,
                                        options.seed);
      return source;
    }
    const std::string text = read_text_file(options.text_path, options.max_text_bytes);
    std::optional<std::vector<int32_t>> ids = tokenize_remote(*client, url, model, text);
    if (!ids) {
      fail<InvalidArgument>(
          "{} did not tokenize --prompt-text {} (POST /tokenize): without it, drop --prompt-text to send "
          "pseudo-random ids below --vocab-size, or use --prompt-format text",
          url.str(), options.text_path);
    }
    if (ids->empty()) fail<InvalidArgument>("--prompt-text {}: the server found no tokens in it", options.text_path);
    PromptSource source(std::move(*ids), options);
    source.description_ = fmt::format("token ids of {} ({} tokens, tokenized by the server)",
                                      std::filesystem::path(options.text_path).filename().string(), source.stream_.size());
    return source;
  }

  // Text mode.
  const bool from_file = !options.text_path.empty();
  std::string text = from_file ? read_text_file(options.text_path, options.max_text_bytes) : filler_text(options.seed, 40000);
  std::optional<std::vector<int32_t>> ids = tokenize_remote(*client, url, model, text);
  PromptSource source(ids ? std::move(*ids) : std::vector<int32_t>{}, options);
  source.text_ = std::move(text);
  if (!source.stream_.empty()) {
    source.chars_per_token_ = static_cast<double>(source.text_.size()) / static_cast<double>(source.stream_.size());
    const std::vector<int32_t> probe(source.stream_.begin(), source.stream_.begin() + std::min<size_t>(8, source.stream_.size()));
    source.detokenize_ = detokenize_remote(*client, url, model, probe).has_value();
  } else if (!from_file) {
    source.chars_per_token_ = static_cast<double>(source.text_.size()) / 40000.0;  // about one token a word
  }
  const std::string what = from_file ? std::filesystem::path(options.text_path).filename().string() : "filler words";
  source.description_ =
      source.detokenize_
          ? fmt::format("text: windows of {} detokenized by the server (lengths approximate)", what)
          : fmt::format("text: slices of {} at {:.2f} characters a token (lengths approximate)", what,
                        source.chars_per_token_);
  if (!source.detokenize_) spdlog::warn("the server has no /tokenize or /detokenize: prompt lengths are only approximate");
  return source;
}

void PromptSource::prepare_texts(const Workload& workload, const ServerUrl& url, const std::string& api_key,
                                 const std::string& model) {
  if (options_.format != PromptFormat::Text) return;
  texts_.assign(workload.requests.size(), std::string());
  auto client = setup_client(url, api_key);
  for (size_t i = 0; i < workload.requests.size(); ++i) {
    const int64_t tokens = workload.requests[i].prompt_tokens;
    std::optional<std::string> text;
    if (detokenize_) text = detokenize_remote(*client, url, model, ids(i, tokens));
    texts_[i] = text ? std::move(*text) : text_slice(i, tokens);
  }
}

std::vector<int32_t> PromptSource::unique_prefix(size_t index, int64_t tokens) const {
  std::vector<int32_t> prefix;
  if (!options_.unique_prefix || alphabet_.size() < 2) return prefix;
  uint64_t code = salt_ + index;
  for (int64_t i = 0; i < std::min(tokens, kPrefixTokens); ++i) {
    prefix.push_back(alphabet_[code % alphabet_.size()]);
    code /= alphabet_.size();
  }
  return prefix;
}

std::vector<int32_t> PromptSource::ids(size_t index, int64_t tokens) const {
  std::vector<int32_t> out;
  if (tokens <= 0 || stream_.empty()) return out;
  out.reserve(static_cast<size_t>(tokens));
  size_t pos = splitmix64(options_.seed * 0x100000001B3ULL + index) % stream_.size();
  for (int64_t i = 0; i < tokens; ++i) {
    out.push_back(stream_[pos]);
    if (++pos == stream_.size()) pos = 0;
  }
  const std::vector<int32_t> prefix = unique_prefix(index, tokens);
  std::copy(prefix.begin(), prefix.end(), out.begin());
  return out;
}

std::string PromptSource::text_slice(size_t index, int64_t tokens) const {
  if (text_.empty() || tokens <= 0) return {};
  const auto is_continuation = [&](size_t i) { return (static_cast<unsigned char>(text_[i]) & 0xC0) == 0x80; };
  // A short unique tag first (see the header), then text of about the remaining length.
  std::string out = options_.unique_prefix ? fmt::format("{:x} ", (salt_ + index) & 0xFFFFFF) : std::string();
  const size_t want = static_cast<size_t>(std::max(1.0, std::round(static_cast<double>(tokens) * chars_per_token_)));
  const size_t target = want > out.size() ? want : out.size() + 1;
  size_t pos = splitmix64(options_.seed * 0x100000001B3ULL + index) % text_.size();
  for (int step = 0; step < 4 && is_continuation(pos); ++step) pos = (pos + 1) % text_.size();
  const auto take = [&] {
    out += text_[pos];
    if (++pos == text_.size()) pos = 0;
  };
  while (out.size() < target) take();
  // Never end inside a multi-byte character (at most 3 continuation bytes follow a lead byte).
  for (int i = 0; i < 3 && is_continuation(pos); ++i) take();
  return out;
}

nlohmann::json PromptSource::prompt(size_t index, int64_t tokens) const {
  if (options_.format == PromptFormat::Ids) return ids(index, tokens);
  if (index < texts_.size() && !texts_[index].empty()) return texts_[index];
  return text_slice(index, tokens);
}

int32_t PromptSource::max_token_id() const {
  return stream_.empty() ? 0 : *std::max_element(stream_.begin(), stream_.end());
}

}  // namespace morphserve::bench
