#include "server/chat_template.h"

#include <fmt/format.h>

#include "server/api_error.h"

namespace morphserve::server {

namespace {

bool contains(std::string_view text, std::string_view marker) { return text.find(marker) != std::string_view::npos; }

// Python's str.strip() / Jinja's trim: ASCII whitespace at both ends.
std::string strip(std::string_view s) {
  constexpr std::string_view kSpace = " \t\n\r\f\v";
  const size_t begin = s.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  const size_t end = s.find_last_not_of(kSpace);
  return std::string(s.substr(begin, end - begin + 1));
}

// Both [INST] templates raise this when roles do not alternate user/assistant starting with user.
void check_alternation(std::span<const ChatMessage> messages) {
  for (size_t i = 0; i < messages.size(); ++i) {
    if ((messages[i].role == "user") != (i % 2 == 0)) {
      throw_invalid("Conversation roles must alternate user/assistant/user/assistant/... (the model's chat template "
                    "requires it)",
                    "messages");
    }
  }
}

std::string render_llama2(const ChatTemplate& t, std::span<const ChatMessage> messages) {
  std::optional<std::string> system;
  if (!messages.empty() && messages[0].role == "system") {
    system = messages[0].content;
    messages = messages.subspan(1);
  }
  check_alternation(messages);
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    std::string content = m.content;
    if (i == 0 && system) content = fmt::format("<<SYS>>\n{}\n<</SYS>>\n\n{}", *system, m.content);
    if (m.role == "user") {
      out += fmt::format("{}[INST] {} [/INST]", t.bos_token, strip(content));
    } else if (m.role == "assistant") {
      out += fmt::format(" {} {}", strip(content), t.eos_token);
    }
  }
  return out;
}

std::string render_mistral(const ChatTemplate& t, std::span<const ChatMessage> messages) {
  std::string out = t.bos_token;
  check_alternation(messages);
  for (const ChatMessage& m : messages) {
    if (m.role == "user") {
      out += fmt::format("[INST] {} [/INST]", m.content);
    } else if (m.role == "assistant") {
      out += fmt::format("{}{} ", m.content, t.eos_token);
    } else {
      throw_invalid("Only user and assistant roles are supported by the model's chat template", "messages");
    }
  }
  return out;
}

std::string llama3_turn(std::string_view role, std::string_view content) {
  return fmt::format("<|start_header_id|>{}<|end_header_id|>\n\n{}<|eot_id|>", role, strip(content));
}

std::string render_llama3(const ChatTemplate& t, std::span<const ChatMessage> messages, bool add_generation_prompt) {
  std::string out = t.bos_token;
  if (t.llama3_dated_system) {
    std::string system;
    if (!messages.empty() && messages[0].role == "system") {
      system = strip(messages[0].content);
      messages = messages.subspan(1);
    }
    out += fmt::format(
        "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: {}\n\n{}"
        "<|eot_id|>",
        t.llama3_date, system);
  }
  for (const ChatMessage& m : messages) out += llama3_turn(m.role, m.content);
  if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

std::string render_chatml(const ChatTemplate& t, std::span<const ChatMessage> messages, bool add_generation_prompt) {
  std::string out;
  if (!t.chatml_default_system.empty() && (messages.empty() || messages[0].role != "system")) {
    out += fmt::format("<|im_start|>system\n{}<|im_end|>\n", t.chatml_default_system);
  }
  for (const ChatMessage& m : messages) out += fmt::format("<|im_start|>{}\n{}<|im_end|>\n", m.role, m.content);
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

std::string render_zephyr(const ChatTemplate& t, std::span<const ChatMessage> messages, bool add_generation_prompt) {
  std::string out;
  for (const ChatMessage& m : messages) out += fmt::format("<|{}|>\n{}{}\n", m.role, m.content, t.eos_token);
  if (add_generation_prompt) out += "<|assistant|>\n";
  return out;
}

// Qwen-style templates spell their default system prompt as a literal:
// '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' ("\n" is a Jinja escape there).
std::string chatml_default_system(std::string_view text) {
  constexpr std::string_view kOpen = "<|im_start|>system\\n";
  const size_t begin = text.find(kOpen);
  if (begin == std::string_view::npos) return {};
  const size_t start = begin + kOpen.size();
  const size_t end = text.find("<|im_end|>", start);
  if (end == std::string_view::npos) return {};
  const std::string_view literal = text.substr(start, end - start);
  // Anything that looks like an expression is not a literal default.
  if (literal.find_first_of("{}'\"+\\") != std::string_view::npos) return {};
  return std::string(literal);
}

}  // namespace

std::string_view chat_template_family_name(ChatTemplateFamily family) {
  switch (family) {
    case ChatTemplateFamily::Default: return "default";
    case ChatTemplateFamily::Llama2: return "llama2";
    case ChatTemplateFamily::Mistral: return "mistral";
    case ChatTemplateFamily::Llama3: return "llama3";
    case ChatTemplateFamily::ChatML: return "chatml";
    case ChatTemplateFamily::Zephyr: return "zephyr";
    case ChatTemplateFamily::Unknown: return "unknown";
  }
  return "unknown";
}

std::optional<ChatTemplateFamily> parse_chat_template_family(std::string_view name) {
  for (ChatTemplateFamily f : {ChatTemplateFamily::Default, ChatTemplateFamily::Llama2, ChatTemplateFamily::Mistral,
                               ChatTemplateFamily::Llama3, ChatTemplateFamily::ChatML, ChatTemplateFamily::Zephyr}) {
    if (chat_template_family_name(f) == name) return f;
  }
  return std::nullopt;
}

ChatTemplateFamily detect_chat_template_family(std::string_view text) {
  if (strip(text).empty()) return ChatTemplateFamily::Default;
  if (contains(text, "<|start_header_id|>")) return ChatTemplateFamily::Llama3;
  if (contains(text, "<|im_start|>")) return ChatTemplateFamily::ChatML;
  if (contains(text, "[INST]")) return contains(text, "<<SYS>>") ? ChatTemplateFamily::Llama2 : ChatTemplateFamily::Mistral;
  if (contains(text, "<|user|>") && !contains(text, "<|end|>") && (contains(text, "eos_token") || contains(text, "</s>"))) {
    return ChatTemplateFamily::Zephyr;
  }
  return ChatTemplateFamily::Unknown;
}

ChatTemplate make_chat_template(std::string_view text, std::string bos_token, std::string eos_token) {
  ChatTemplate t = make_chat_template(detect_chat_template_family(text), std::move(bos_token), std::move(eos_token));
  if (t.family == ChatTemplateFamily::Llama3) t.llama3_dated_system = contains(text, "Cutting Knowledge Date");
  if (t.family == ChatTemplateFamily::ChatML) t.chatml_default_system = chatml_default_system(text);
  return t;
}

ChatTemplate make_chat_template(ChatTemplateFamily family, std::string bos_token, std::string eos_token) {
  ChatTemplate t;
  t.family = family;
  t.bos_token = std::move(bos_token);
  t.eos_token = std::move(eos_token);
  return t;
}

std::string render_chat(const ChatTemplate& t, std::span<const ChatMessage> messages, bool add_generation_prompt) {
  switch (t.family) {
    case ChatTemplateFamily::Default:
    case ChatTemplateFamily::ChatML: return render_chatml(t, messages, add_generation_prompt);
    case ChatTemplateFamily::Llama2: return render_llama2(t, messages);
    case ChatTemplateFamily::Mistral: return render_mistral(t, messages);
    case ChatTemplateFamily::Llama3: return render_llama3(t, messages, add_generation_prompt);
    case ChatTemplateFamily::Zephyr: return render_zephyr(t, messages, add_generation_prompt);
    case ChatTemplateFamily::Unknown: break;
  }
  throw ApiError(400, "invalid_request_error",
                 "the model's chat template (tokenizer.chat_template) is not one morphserve can render (known families: "
                 "llama2, mistral, llama3, chatml, zephyr); start the server with --chat-template FAMILY to choose one, "
                 "or use /v1/completions",
                 "messages", "unsupported_chat_template");
}

}  // namespace morphserve::server
