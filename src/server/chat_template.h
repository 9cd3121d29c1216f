#pragma once
// Chat templates without Jinja (Debian has no C++ Jinja library): the family is recognised from
// markers in the GGUF's tokenizer.chat_template text and each family is rendered in C++ exactly as
// its official template renders it. Families and their references:
//   llama2  - Meta's Llama-2-chat template ("[INST]" with "<<SYS>>")
//   mistral - Mistral-7B-Instruct-v0.1 ("[INST]" without "<<SYS>>"; no system role)
//   llama3  - Meta-Llama-3-Instruct ("<|start_header_id|>"); the 3.1+ variant (its template
//             mentions "Cutting Knowledge Date") adds the dated system header
//   chatml  - "<|im_start|>"; a default system prompt written literally in the template (Qwen's
//             "You are a helpful assistant.") is inserted when the conversation has none
//   zephyr  - HuggingFaceH4/zephyr-7b-beta ("<|user|>" and the EOS token, no "<|end|>")
//   default - for models without a template: the ChatML layout as plain text
// An unrecognised template is reported at start-up and chat requests get a 400 naming it.
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace morphserve::server {

struct ChatMessage {
  std::string role;  // system, user or assistant
  std::string content;
};

enum class ChatTemplateFamily { Default, Llama2, Mistral, Llama3, ChatML, Zephyr, Unknown };

std::string_view chat_template_family_name(ChatTemplateFamily family);
// For --chat-template: "default", "llama2", "mistral", "llama3", "chatml", "zephyr".
std::optional<ChatTemplateFamily> parse_chat_template_family(std::string_view name);
// Which family a GGUF template is; Default for an empty one, Unknown when no family matches.
ChatTemplateFamily detect_chat_template_family(std::string_view template_text);

struct ChatTemplate {
  ChatTemplateFamily family = ChatTemplateFamily::Default;
  std::string bos_token;  // the model's BOS and EOS texts, as the templates' bos_token/eos_token
  std::string eos_token;
  bool llama3_dated_system = false;        // Llama 3.1+: "Cutting Knowledge Date" system header
  std::string llama3_date = "26 Jul 2024";  // the template's default date_string
  std::string chatml_default_system;       // inserted when the first message is not a system one
};

// Reads everything the renderer needs from the GGUF template text.
ChatTemplate make_chat_template(std::string_view template_text, std::string bos_token, std::string eos_token);
// Forces a family (--chat-template), keeping the model's special tokens.
ChatTemplate make_chat_template(ChatTemplateFamily family, std::string bos_token, std::string eos_token);

// The prompt text, special tokens spelled out (tokenize it with special-token parsing). Throws a
// 400 ApiError for a conversation the template rejects, or when the family is Unknown.
std::string render_chat(const ChatTemplate& chat_template, std::span<const ChatMessage> messages,
                        bool add_generation_prompt);

}  // namespace morphserve::server
