#include "server/openai_request.h"

#include <limits>

#include <fmt/format.h>

#include "server/api_error.h"
#include "server/json_fields.h"

namespace morphserve::server {

namespace {

using nlohmann::json;
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();

// Fields we know but cannot honour: refusing is better than silently ignoring them.
void reject_unsupported(const json& body, std::initializer_list<const char*> names) {
  for (const char* name : names) {
    const json* v = find_field(body, name);
    if (!v) continue;
    if ((v->is_object() || v->is_array()) && v->empty()) continue;  // e.g. "logit_bias": {}
    throw_invalid(fmt::format("'{}' is not supported by this server", name), std::string(name), "unsupported_parameter");
  }
}

std::vector<std::string> parse_stop(const json& body) {
  const json* v = find_field(body, "stop");
  if (!v) return {};
  std::vector<std::string> stop;
  if (v->is_string()) {
    stop.push_back(v->get<std::string>());
  } else if (v->is_array()) {
    if (v->size() > kMaxStopStrings) {
      throw_invalid(fmt::format("'stop' may hold at most {} strings, got {}", kMaxStopStrings, v->size()), "stop");
    }
    for (const json& s : *v) {
      if (!s.is_string()) throw_invalid(fmt::format("'stop' must hold strings, got {}", json_kind(s)), "stop");
      stop.push_back(s.get<std::string>());
    }
  } else {
    throw_invalid(fmt::format("'stop' must be a string or an array of strings, got {}", json_kind(*v)), "stop");
  }
  for (const std::string& s : stop) {
    if (s.empty()) throw_invalid("'stop' strings must not be empty", "stop");
  }
  return stop;
}

void parse_common(const json& body, GenerationRequest& r) {
  reject_unsupported(body, {"logit_bias", "tools", "tool_choice", "functions", "function_call", "suffix",
                            "guided_json", "guided_regex", "guided_choice", "guided_grammar"});
  if (const json* v = find_field(body, "response_format")) {
    const json* type = v->is_object() ? find_field(*v, "type") : nullptr;
    if (!type || *type != "text") {
      throw_invalid("'response_format' other than {\"type\": \"text\"} is not supported", "response_format",
                    "unsupported_parameter");
    }
  }
  r.model = get_string(body, "model");
  r.max_tokens = get_int(body, "max_tokens", 1, kInt64Max);
  if (auto v = get_number(body, "temperature", 0.0, 2.0)) r.params.sampling.temperature = static_cast<float>(*v);
  else r.params.sampling.temperature = 1.0f;  // OpenAI's default
  if (auto v = get_number(body, "top_p", 0.0, 1.0)) {
    // Checked as the float the sampler gets: a positive double below float's range (1e-50)
    // becomes 0, which the engine would refuse with a message naming no field.
    const auto top_p = static_cast<float>(*v);
    if (top_p <= 0.0f) throw_invalid(fmt::format("'top_p' must be in (0, 1], got {}", *v), "top_p");
    r.params.sampling.top_p = top_p;
  }
  if (auto v = get_int(body, "top_k", -1, kInt32Max)) r.params.sampling.top_k = *v <= 0 ? 0 : static_cast<int>(*v);
  if (auto v = get_number(body, "min_p", 0.0, 1.0)) r.params.sampling.min_p = static_cast<float>(*v);
  if (auto v = get_int(body, "seed", std::numeric_limits<int64_t>::min(), kInt64Max)) {
    r.params.sampling.seed = static_cast<uint64_t>(*v);
  }
  if (auto v = get_number(body, "presence_penalty", -2.0, 2.0)) r.params.presence_penalty = static_cast<float>(*v);
  if (auto v = get_number(body, "frequency_penalty", -2.0, 2.0)) r.params.frequency_penalty = static_cast<float>(*v);
  r.params.stop = parse_stop(body);
  if (auto v = get_bool(body, "ignore_eos")) r.params.ignore_eos = *v;
  if (auto v = get_int(body, "n", 1, kMaxChoices)) r.n = static_cast<int>(*v);
  if (auto v = get_int(body, "best_of", 1, kMaxChoices); v && *v != r.n) {
    throw_invalid("'best_of' other than n is not supported", "best_of", "unsupported_parameter");
  }
  r.stream = get_bool(body, "stream").value_or(false);
  if (const json* v = find_field(body, "stream_options")) {
    if (!v->is_object()) throw_invalid(fmt::format("'stream_options' must be an object, got {}", json_kind(*v)), "stream_options");
    if (!r.stream) throw_invalid("'stream_options' is only allowed when 'stream' is true", "stream_options");
    r.include_usage = get_bool(*v, "include_usage", "stream_options.include_usage").value_or(false);
  }
  (void)get_string(body, "user");  // accepted and ignored, but it must be a string
}

PromptInput parse_prompt(const json& body) {
  const json* v = find_field(body, "prompt");
  if (!v) throw_invalid("'prompt' is required", "prompt");
  if (v->is_string()) return v->get<std::string>();
  if (!v->is_array()) {
    throw_invalid(fmt::format("'prompt' must be a string or an array of token ids, got {}", json_kind(*v)), "prompt");
  }
  if (v->empty()) throw_invalid("'prompt' must not be empty", "prompt");
  const json& first = v->front();
  if (first.is_string() || first.is_array()) {
    // A batch of prompts; one is accepted in either spelling.
    if (v->size() != 1) {
      throw_invalid(fmt::format("batches of prompts are not supported (got {}); send one prompt per request", v->size()),
                    "prompt");
    }
    if (first.is_string()) return first.get<std::string>();
    return parse_prompt(json{{"prompt", first}});
  }
  std::vector<int32_t> ids;
  ids.reserve(v->size());
  for (const json& id : *v) ids.push_back(static_cast<int32_t>(as_int(id, "prompt", 0, kInt32Max)));
  return ids;
}

std::string parse_content(const json& message, size_t index) {
  const std::string where = fmt::format("messages[{}].content", index);
  const json* v = find_field(message, "content");
  if (!v) throw_invalid(fmt::format("'{}' is required", where), where);
  if (v->is_string()) return v->get<std::string>();
  if (!v->is_array()) {
    throw_invalid(fmt::format("'{}' must be a string or an array of content parts, got {}", where, json_kind(*v)), where);
  }
  // Text parts are joined with newlines, as vLLM does.
  std::string text;
  for (size_t i = 0; i < v->size(); ++i) {
    const json& part = (*v)[i];
    const std::string part_where = fmt::format("{}[{}]", where, i);
    if (!part.is_object()) throw_invalid(fmt::format("'{}' must be an object", part_where), part_where);
    const std::optional<std::string> type = get_string(part, "type", part_where + ".type");
    if (type != "text") {
      throw_invalid(fmt::format("'{}': only content parts of type \"text\" are supported", part_where),
                    part_where + ".type");
    }
    const std::optional<std::string> part_text = get_string(part, "text", part_where + ".text");
    if (!part_text) throw_invalid(fmt::format("'{}.text' is required", part_where), part_where + ".text");
    if (i > 0) text += '\n';
    text += *part_text;
  }
  return text;
}

std::vector<ChatMessage> parse_messages(const json& body) {
  const json* v = find_field(body, "messages");
  if (!v) throw_invalid("'messages' is required", "messages");
  if (!v->is_array()) throw_invalid(fmt::format("'messages' must be an array, got {}", json_kind(*v)), "messages");
  if (v->empty()) throw_invalid("'messages' must not be empty", "messages");
  std::vector<ChatMessage> messages;
  for (size_t i = 0; i < v->size(); ++i) {
    const json& m = (*v)[i];
    const std::string where = fmt::format("messages[{}]", i);
    if (!m.is_object()) throw_invalid(fmt::format("'{}' must be an object, got {}", where, json_kind(m)), where);
    const json* role = find_field(m, "role");
    if (!role || !role->is_string()) throw_invalid(fmt::format("'{}.role' must be a string", where), where + ".role");
    std::string r = role->get<std::string>();
    if (r == "developer") r = "system";  // OpenAI's newer name for the system role
    if (r != "system" && r != "user" && r != "assistant") {
      throw_invalid(fmt::format("'{}.role' must be system, user or assistant, got \"{}\"", where, r), where + ".role");
    }
    messages.push_back({std::move(r), parse_content(m, i)});
  }
  return messages;
}

}  // namespace

CompletionRequest parse_completion_request(const json& body) {
  CompletionRequest r;
  parse_common(body, r);
  r.prompt = parse_prompt(body);
  if (const json* v = find_field(body, "logprobs")) {
    if (v->is_boolean()) throw_invalid("'logprobs' must be an integer between 0 and 20, got boolean", "logprobs");
    r.params.logprobs = static_cast<int>(as_int(*v, "logprobs", 0, kMaxLogprobs));
  }
  r.echo = get_bool(body, "echo").value_or(false);
  if (r.echo && r.params.logprobs >= 0) {
    throw_invalid("'echo' together with 'logprobs' is not supported (prompt logprobs are not computed)", "echo",
                  "unsupported_parameter");
  }
  return r;
}

ChatRequest parse_chat_request(const json& body) {
  ChatRequest r;
  parse_common(body, r);
  if (auto v = get_int(body, "max_completion_tokens", 1, kInt64Max)) r.max_tokens = v;
  r.messages = parse_messages(body);
  const bool logprobs = get_bool(body, "logprobs").value_or(false);
  const std::optional<int64_t> top = get_int(body, "top_logprobs", 0, kMaxLogprobs);
  if (top && !logprobs) throw_invalid("'top_logprobs' requires 'logprobs' to be true", "top_logprobs");
  if (logprobs) r.params.logprobs = static_cast<int>(top.value_or(0));
  r.add_generation_prompt = get_bool(body, "add_generation_prompt").value_or(true);
  if (find_field(body, "echo")) throw_invalid("'echo' is not supported for chat completions", "echo");
  return r;
}

}  // namespace morphserve::server
