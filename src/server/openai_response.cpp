#include "server/openai_response.h"

#include <chrono>
#include <random>

#include <fmt/format.h>

#include "model/tokenizer.h"

namespace morphserve::server {

using nlohmann::json;

std::string make_response_id(ApiKind kind) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return fmt::format("{}-{:016x}{:08x}", kind == ApiKind::Chat ? "chatcmpl" : "cmpl", rng(),
                     static_cast<uint32_t>(rng()));
}

int64_t unix_time_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

json usage_json(int64_t prompt_tokens, int64_t completion_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

json finish_reason_json(std::optional<FinishReason> reason) {
  if (!reason || (*reason != FinishReason::Stop && *reason != FinishReason::Length)) return nullptr;
  return std::string(finish_reason_name(*reason));
}

ChoiceLogprobs::ChoiceLogprobs(ApiKind kind, const Tokenizer& tokenizer, size_t text_offset)
    : kind_(kind), tokenizer_(tokenizer), text_offset_(text_offset) {
  if (kind_ == ApiKind::Chat) {
    all_ = {{"content", json::array()}};
  } else {
    all_ = {{"tokens", json::array()},
            {"token_logprobs", json::array()},
            {"top_logprobs", json::array()},
            {"text_offset", json::array()}};
  }
}

json ChoiceLogprobs::add(const std::vector<GeneratedToken>& tokens) {
  json part = shape(tokens);
  for (auto& [key, values] : part.items()) {
    for (const json& v : values) all_[key].push_back(v);
  }
  return part;
}

json ChoiceLogprobs::shape(const std::vector<GeneratedToken>& tokens) {
  auto bytes_of = [](const std::string& s) {
    json bytes = json::array();
    for (unsigned char c : s) bytes.push_back(static_cast<int>(c));
    return bytes;
  };
  if (kind_ == ApiKind::Chat) {
    json content = json::array();
    for (const GeneratedToken& t : tokens) {
      const std::string piece = tokenizer_.token_to_piece(t.token);
      json top = json::array();
      for (const TokenLogprob& alt : t.top_logprobs) {
        const std::string alt_piece = tokenizer_.token_to_piece(alt.token);
        top.push_back({{"token", alt_piece}, {"logprob", alt.logprob}, {"bytes", bytes_of(alt_piece)}});
      }
      content.push_back({{"token", piece}, {"logprob", t.logprob}, {"bytes", bytes_of(piece)}, {"top_logprobs", top}});
    }
    return {{"content", std::move(content)}};
  }
  json out = {{"tokens", json::array()},
              {"token_logprobs", json::array()},
              {"top_logprobs", json::array()},
              {"text_offset", json::array()}};
  for (const GeneratedToken& t : tokens) {
    const std::string piece = tokenizer_.token_to_piece(t.token);
    json top = json::object();
    top[piece] = t.logprob;  // the chosen token is always listed, as vLLM does
    for (const TokenLogprob& alt : t.top_logprobs) top[tokenizer_.token_to_piece(alt.token)] = alt.logprob;
    out["tokens"].push_back(piece);
    out["token_logprobs"].push_back(t.logprob);
    out["top_logprobs"].push_back(std::move(top));
    out["text_offset"].push_back(text_offset_);
    text_offset_ += piece.size();
  }
  return out;
}

json response_choice(ApiKind kind, int index, const std::string& text, std::optional<FinishReason> finish,
                     const json& logprobs) {
  json choice = {{"index", index}};
  if (kind == ApiKind::Chat) {
    choice["message"] = {{"role", "assistant"}, {"content", text}};
  } else {
    choice["text"] = text;
  }
  choice["logprobs"] = logprobs;
  choice["finish_reason"] = finish_reason_json(finish);
  return choice;
}

json chunk_choice(ApiKind kind, int index, const std::string& text, std::optional<FinishReason> finish,
                  const json& logprobs, bool chat_role) {
  json choice = {{"index", index}};
  if (kind == ApiKind::Chat) {
    json delta = json::object();
    if (chat_role) delta["role"] = "assistant";
    if (chat_role || !text.empty()) delta["content"] = text;
    choice["delta"] = std::move(delta);
  } else {
    choice["text"] = text;
  }
  choice["logprobs"] = logprobs;
  choice["finish_reason"] = finish_reason_json(finish);
  return choice;
}

namespace {
json envelope(const ResponseHeader& h, const char* object) {
  return {{"id", h.id}, {"object", object}, {"created", h.created}, {"model", h.model}};
}
}  // namespace

json whole_response(const ResponseHeader& h, json choices, const json& usage) {
  json r = envelope(h, h.kind == ApiKind::Chat ? "chat.completion" : "text_completion");
  r["choices"] = std::move(choices);
  r["usage"] = usage;
  return r;
}

json stream_chunk(const ResponseHeader& h, json choices, bool with_usage) {
  json r = envelope(h, h.kind == ApiKind::Chat ? "chat.completion.chunk" : "text_completion");
  r["choices"] = std::move(choices);
  if (with_usage) r["usage"] = nullptr;
  return r;
}

json usage_chunk(const ResponseHeader& h, const json& usage) {
  json r = envelope(h, h.kind == ApiKind::Chat ? "chat.completion.chunk" : "text_completion");
  r["choices"] = json::array();
  r["usage"] = usage;
  return r;
}

}  // namespace morphserve::server
