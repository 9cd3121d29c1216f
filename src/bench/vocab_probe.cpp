#include "bench/vocab_probe.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace morphserve::bench {

namespace {

constexpr auto kProbeTimeout = std::chrono::seconds(60);

std::optional<int64_t> listed_vocab_size(const ServerUrl& url, const std::string& api_key, const std::string& model) {
  auto client = make_client(url, kProbeTimeout, api_key);
  const JsonReply reply = get_json(*client, url, "/v1/models");
  if (reply.status != 200) return std::nullopt;
  const auto doc = reply.json();
  if (!doc || !doc->is_object() || !doc->contains("data") || !(*doc)["data"].is_array()) return std::nullopt;
  for (const nlohmann::json& entry : (*doc)["data"]) {
    if (!entry.is_object() || entry.value("id", std::string()) != model) continue;
    const auto it = entry.find("vocab_size");
    if (it != entry.end() && it->is_number_integer() && it->get<int64_t>() > 0) return it->get<int64_t>();
  }
  return std::nullopt;
}

// Whether the server takes a prompt of the single token `id`.
bool accepts(const ServerUrl& url, const std::string& api_key, const std::string& model, int64_t id) {
  auto client = make_client(url, kProbeTimeout, api_key);
  const nlohmann::json body = {{"model", model}, {"prompt", nlohmann::json::array({id})}, {"max_tokens", 1},
                               {"temperature", 0}, {"stream", false}};
  const JsonReply reply = post_json(*client, url, "/v1/completions", body);
  if (reply.status == 200) return true;
  if (reply.status == 400 || reply.status == 422) return false;
  const std::string why = reply.status == 0 ? reply.error : fmt::format("HTTP {}: {}", reply.status, error_message_of(reply.body));
  fail<InvalidArgument>("cannot find {}'s vocabulary size: a 1-token /v1/completions request with prompt [{}] failed ({}); "
                        "give --vocab-size or --prompt-text",
                        url.str(), id, why);
}

}  // namespace

VocabSize discover_vocab_size(const ServerUrl& url, const std::string& api_key, const std::string& model, int64_t cap) {
  if (cap < 1) fail<InvalidArgument>("vocabulary cap must be positive, got {}", cap);
  if (const std::optional<int64_t> listed = listed_vocab_size(url, api_key, model)) {
    return {std::min(*listed, cap), fmt::format("vocab_size {} from GET /v1/models", *listed)};
  }
  if (accepts(url, api_key, model, cap - 1)) return {cap, fmt::format("probed: id {} accepted", cap - 1)};
  if (!accepts(url, api_key, model, 0)) {
    fail<InvalidArgument>("cannot find {}'s vocabulary size: it refuses even a prompt of token id 0; give --vocab-size "
                          "or --prompt-text",
                          url.str());
  }
  int64_t good = 0;     // accepted
  int64_t bad = cap - 1;  // refused
  while (bad - good > 1) {
    const int64_t mid = good + (bad - good) / 2;
    (accepts(url, api_key, model, mid) ? good : bad) = mid;
  }
  return {good + 1, fmt::format("probed: id {} accepted, {} refused", good, bad)};
}

}  // namespace morphserve::bench
