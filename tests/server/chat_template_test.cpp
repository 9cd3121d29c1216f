// Each chat template family renders a conversation exactly as its official Jinja template does.
#include "server/chat_template.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

#include "server/api_error.h"

namespace morphserve::server {
namespace {

// llama.cpp's test conversation: note the assistant turn with surrounding spaces.
const std::vector<ChatMessage> kConversation = {
    {"system", "You are a helpful assistant"}, {"user", "Hello"},
    {"assistant", "Hi there"},                 {"user", "Who are you"},
    {"assistant", "   I am an assistant   "},  {"user", "Another question"},
};

// Excerpts of the official templates, enough to recognise each family.
constexpr const char* kLlama2Template =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
    "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif "
    "%}{% for message in loop_messages %}...{% if loop.index0 == 0 and system_message != false %}{% set content = "
    "'<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = "
    "message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + "
    "' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif "
    "%}{% endfor %}";
constexpr const char* kMistralTemplate =
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + "
    "' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}{% endif %}{% "
    "endfor %}";
constexpr const char* kLlama3Template =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 "
    "%}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
constexpr const char* kLlama31Template =
    "{{- bos_token }}{%- if not date_string is defined %}{%- set date_string = \"26 Jul 2024\" %}{%- endif %}"
    "{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}{{- \"Cutting Knowledge Date: December 2023\\n\" }}";
constexpr const char* kChatMlTemplate =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
    "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
constexpr const char* kQwenTemplate =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ "
    "'<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + "
    "message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}";
constexpr const char* kZephyrTemplate =
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\\n' + message['content'] + "
    "eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\\n' + message['content'] + eos_token }}\n{% "
    "elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\\n'  + message['content'] + eos_token }}\n{% endif "
    "%}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}";
constexpr const char* kPhi3Template =
    "{% for message in messages %}{{'<|user|>' + '\\n' + message['content'] + '<|end|>' + '\\n' + "
    "'<|assistant|>' + '\\n'}}{% endfor %}{{ eos_token }}";

TEST(ChatTemplate, DetectsFamilies) {
  EXPECT_EQ(detect_chat_template_family(""), ChatTemplateFamily::Default);
  EXPECT_EQ(detect_chat_template_family("  \n"), ChatTemplateFamily::Default);
  EXPECT_EQ(detect_chat_template_family(kLlama2Template), ChatTemplateFamily::Llama2);
  EXPECT_EQ(detect_chat_template_family(kMistralTemplate), ChatTemplateFamily::Mistral);
  EXPECT_EQ(detect_chat_template_family(kLlama3Template), ChatTemplateFamily::Llama3);
  EXPECT_EQ(detect_chat_template_family(kLlama31Template), ChatTemplateFamily::Llama3);
  EXPECT_EQ(detect_chat_template_family(kChatMlTemplate), ChatTemplateFamily::ChatML);
  EXPECT_EQ(detect_chat_template_family(kQwenTemplate), ChatTemplateFamily::ChatML);
  EXPECT_EQ(detect_chat_template_family(kZephyrTemplate), ChatTemplateFamily::Zephyr);
  EXPECT_EQ(detect_chat_template_family(kPhi3Template), ChatTemplateFamily::Unknown);
  EXPECT_EQ(detect_chat_template_family("{{ messages }}"), ChatTemplateFamily::Unknown);
}

TEST(ChatTemplate, FamilyNames) {
  for (auto f : {ChatTemplateFamily::Default, ChatTemplateFamily::Llama2, ChatTemplateFamily::Mistral,
                 ChatTemplateFamily::Llama3, ChatTemplateFamily::ChatML, ChatTemplateFamily::Zephyr}) {
    EXPECT_EQ(parse_chat_template_family(chat_template_family_name(f)), f);
  }
  EXPECT_FALSE(parse_chat_template_family("unknown"));
  EXPECT_FALSE(parse_chat_template_family("jinja"));
}

TEST(ChatTemplate, Llama2) {
  const ChatTemplate t = make_chat_template(kLlama2Template, "<s>", "</s>");
  EXPECT_EQ(render_chat(t, kConversation, true),
            "<s>[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST] Hi there </s>"
            "<s>[INST] Who are you [/INST] I am an assistant </s><s>[INST] Another question [/INST]");
  const std::vector<ChatMessage> no_system(kConversation.begin() + 1, kConversation.end());
  EXPECT_EQ(render_chat(t, std::span(no_system).first(1), true), "<s>[INST] Hello [/INST]");
}

TEST(ChatTemplate, Llama2RejectsRolesOutOfTurn) {
  const ChatTemplate t = make_chat_template(kLlama2Template, "<s>", "</s>");
  const std::vector<ChatMessage> two_users = {{"user", "a"}, {"user", "b"}};
  try {
    render_chat(t, two_users, true);
    ADD_FAILURE();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_THAT(e.what(), ::testing::HasSubstr("alternate"));
  }
}

TEST(ChatTemplate, Mistral) {
  const ChatTemplate t = make_chat_template(kMistralTemplate, "<s>", "</s>");
  const std::vector<ChatMessage> no_system(kConversation.begin() + 1, kConversation.end());
  EXPECT_EQ(render_chat(t, no_system, true),
            "<s>[INST] Hello [/INST]Hi there</s> [INST] Who are you [/INST]   I am an assistant   </s> "
            "[INST] Another question [/INST]");
  EXPECT_THROW(render_chat(t, kConversation, true), ApiError);  // no system role
}

TEST(ChatTemplate, Llama3) {
  const ChatTemplate t = make_chat_template(kLlama3Template, "<|begin_of_text|>", "<|end_of_text|>");
  EXPECT_EQ(render_chat(t, kConversation, true),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nI am an assistant<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  const std::vector<ChatMessage> one = {{"user", "Hi"}};
  EXPECT_EQ(render_chat(t, one, false), "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>");
}

TEST(ChatTemplate, Llama31DatedSystemHeader) {
  const ChatTemplate t = make_chat_template(kLlama31Template, "<|begin_of_text|>", "<|eot_id|>");
  EXPECT_TRUE(t.llama3_dated_system);
  const std::vector<ChatMessage> messages = {{"system", " Be brief. "}, {"user", "Hi"}};
  EXPECT_EQ(render_chat(t, messages, true),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
            "Today Date: 26 Jul 2024\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, ChatMl) {
  const ChatTemplate t = make_chat_template(kChatMlTemplate, "<s>", "<|im_end|>");
  EXPECT_EQ(render_chat(t, kConversation, true),
            "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
            "<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n"
            "<|im_start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother question<|im_end|>\n"
            "<|im_start|>assistant\n");
  const std::vector<ChatMessage> one = {{"user", "Hi"}};
  EXPECT_EQ(render_chat(t, one, false), "<|im_start|>user\nHi<|im_end|>\n");
}

TEST(ChatTemplate, ChatMlDefaultSystemPrompt) {
  const ChatTemplate t = make_chat_template(kQwenTemplate, "", "<|im_end|>");
  EXPECT_EQ(t.chatml_default_system, "You are a helpful assistant.");
  const std::vector<ChatMessage> one = {{"user", "Hi"}};
  EXPECT_EQ(render_chat(t, one, true),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\n");
  const std::vector<ChatMessage> with_system = {{"system", "S"}, {"user", "Hi"}};
  EXPECT_EQ(render_chat(t, with_system, false), "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
}

TEST(ChatTemplate, Zephyr) {
  const ChatTemplate t = make_chat_template(kZephyrTemplate, "<s>", "</s>");
  EXPECT_EQ(render_chat(t, kConversation, true),
            "<|system|>\nYou are a helpful assistant</s>\n<|user|>\nHello</s>\n<|assistant|>\nHi there</s>\n"
            "<|user|>\nWho are you</s>\n<|assistant|>\n   I am an assistant   </s>\n<|user|>\nAnother question</s>\n"
            "<|assistant|>\n");
}

TEST(ChatTemplate, DefaultIsPlainChatMl) {
  const ChatTemplate t = make_chat_template("", "<s>", "</s>");
  EXPECT_EQ(t.family, ChatTemplateFamily::Default);
  const std::vector<ChatMessage> messages = {{"system", "S"}, {"user", "Hi"}};
  EXPECT_EQ(render_chat(t, messages, true),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, UnknownTemplateIsA400) {
  const ChatTemplate t = make_chat_template(kPhi3Template, "<s>", "</s>");
  EXPECT_EQ(t.family, ChatTemplateFamily::Unknown);
  try {
    render_chat(t, kConversation, true);
    ADD_FAILURE();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_EQ(e.code(), "unsupported_chat_template");
    EXPECT_THAT(e.what(), ::testing::HasSubstr("--chat-template"));
  }
}

TEST(ChatTemplate, ForcedFamilyKeepsSpecialTokens) {
  const ChatTemplate t = make_chat_template(ChatTemplateFamily::Zephyr, "<s>", "<|endoftext|>");
  const std::vector<ChatMessage> one = {{"user", "Hi"}};
  EXPECT_EQ(render_chat(t, one, true), "<|user|>\nHi<|endoftext|>\n<|assistant|>\n");
}

}  // namespace
}  // namespace morphserve::server
