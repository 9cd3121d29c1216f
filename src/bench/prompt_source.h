#pragma once
// Prompts of an exact token length, for replaying traces that record lengths but no text.
//
// Token ids (--prompt-format ids, the default). The source is a stream of token ids cut into
// windows of the length each request asks for, at an offset that differs per request (wrapping
// around the stream):
//   - with --prompt-text FILE, the stream is the file's text tokenized by the server itself
//     (POST /tokenize: vLLM and morphserve take {"prompt"}, llama.cpp's llama-server takes
//     {"content"}; both shapes are tried), so prompts are real text in the model's vocabulary;
//   - without it, pseudo-random ids below --vocab-size drawn from the seed.
//   The length is exact: the server receives exactly that many ids.
//
// Text (--prompt-format text), for servers that only take strings. Each window of a tokenized text
// is turned back into text through POST /detokenize before the run starts. The server tokenizes
// that text again, so the length is approximate: usually within a few tokens, plus the BOS a
// server adds to text prompts. Without /detokenize (or without /tokenize) the prompt is a slice of
// the text whose length in characters is the token count times the text's characters per token
// (measured when /tokenize answered, else 4), which is rougher still. Without --prompt-text the
// text is a built-in filler of common English words (about one token each). The replay client
// records the server's usage.prompt_tokens when it reports one.
//
// Prefix caching: servers that cache KV by prompt prefix (vLLM's automatic prefix caching,
// llama-server's slot reuse) would make a replay cheaper than the trace says whenever two prompts
// start alike, and windows of one stream may. So the first few tokens of every prompt
// (kPrefixTokens; fewer for shorter prompts) spell the request's index plus a salt derived from
// the seed, in distinct ids of the stream: no two requests of a run share a prefix block. Prompts
// are reproducible from the seed (the arms of an experiment get identical requests), so against
// a long-running server with prefix caching, change --seed between runs (or restart the server)
// lest one run's cache serve the next.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/server_url.h"
#include "bench/workload.h"

namespace morphserve::bench {

enum class PromptFormat { Ids, Text };

// "ids" or "text"; InvalidArgument otherwise.
PromptFormat parse_prompt_format(const std::string& name);

struct PromptSourceOptions {
  PromptFormat format = PromptFormat::Ids;
  std::string text_path;         // empty: pseudo-random ids (ids) or the built-in filler (text)
  int64_t vocab_size = 32000;    // bounds the pseudo-random ids
  uint64_t seed = 0;
  size_t max_text_bytes = 256 * 1024;  // only this much of the file is tokenized: windows wrap around
  bool unique_prefix = true;
};

inline constexpr int64_t kPrefixTokens = 4;

class PromptSource {
 public:
  // Reads the text and talks to the server (/tokenize, /detokenize) as the options need. Throws
  // InvalidArgument with an actionable message when ids mode has a text file but the server
  // cannot tokenize it.
  static PromptSource prepare(const PromptSourceOptions& options, const ServerUrl& url, const std::string& api_key,
                              const std::string& model);

  // Ids mode over a given stream (tests, and servers prepared elsewhere).
  PromptSource(std::vector<int32_t> stream, PromptSourceOptions options);

  // Text mode: turns every request's window into text before the run (one /detokenize each), so
  // the run itself sends no extra requests. A no-op in ids mode.
  void prepare_texts(const Workload& workload, const ServerUrl& url, const std::string& api_key, const std::string& model);

  // The token ids of request `index` (exactly `tokens` of them).
  std::vector<int32_t> ids(size_t index, int64_t tokens) const;
  // The value of the request's "prompt" field: ids, or text in text mode. Thread-safe.
  nlohmann::json prompt(size_t index, int64_t tokens) const;

  PromptFormat format() const { return options_.format; }
  // True when prompts have exactly the asked token count.
  bool exact() const { return options_.format == PromptFormat::Ids; }
  // The largest id a prompt may contain (checked against the server's vocabulary before a run).
  int32_t max_token_id() const;
  // One line for the report: where the prompts come from.
  const std::string& description() const { return description_; }

 private:
  std::string text_slice(size_t index, int64_t tokens) const;
  std::vector<int32_t> unique_prefix(size_t index, int64_t tokens) const;

  PromptSourceOptions options_;
  std::vector<int32_t> stream_;
  std::vector<int32_t> alphabet_;  // distinct ids the unique prefixes are spelled with
  uint64_t salt_ = 0;
  std::string text_;               // text mode: the text the windows come from
  double chars_per_token_ = 4.0;
  bool detokenize_ = false;        // text mode: the server answers /detokenize
  std::vector<std::string> texts_; // text mode: prepared prompts by request index
  std::string description_;
};

// Ids of `text` from the server's POST /tokenize, trying the vLLM/morphserve shape {"prompt"} then
// llama-server's {"content"}; nullopt when neither answers with tokens.
std::optional<std::vector<int32_t>> tokenize_remote(httplib::Client& client, const ServerUrl& url,
                                                    const std::string& model, const std::string& text);
// Text of `ids` from POST /detokenize ({"prompt"} or llama-server's {"content"} in the answer).
std::optional<std::string> detokenize_remote(httplib::Client& client, const ServerUrl& url, const std::string& model,
                                             const std::vector<int32_t>& ids);

}  // namespace morphserve::bench
