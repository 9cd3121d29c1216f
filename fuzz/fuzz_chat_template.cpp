// libFuzzer target: chat template recognition and rendering.
//
// Input: one flags byte, then NUL-separated parts: the template text, the BOS text, the EOS text,
// then one part per message whose first byte picks the role (system, user, assistant, by value
// mod 3) and whose rest is the content.
//   bit 0  add_generation_prompt
//   bit 1  force the family (bits 2..4, mod 7, Unknown included) instead of detecting it
//
// Properties (chat_template.h): make_chat_template's family is detect_chat_template_family's;
// family names parse back; the ChatML-style families, Llama 3 and Zephyr render any conversation;
// the [INST] families refuse only with a 400 ApiError; an Unknown family always refuses with
// code unsupported_chat_template.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "server/api_error.h"
#include "server/chat_template.h"

namespace morphserve::fuzz {
namespace {

std::vector<std::string_view> split_parts(std::string_view text) {
  std::vector<std::string_view> parts;
  for (size_t pos = 0;;) {
    const size_t end = text.find('\0', pos);
    parts.push_back(text.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos));
    if (end == std::string_view::npos) return parts;
    pos = end + 1;
  }
}

bool renders_anything(server::ChatTemplateFamily family) {
  using server::ChatTemplateFamily;
  return family == ChatTemplateFamily::Default || family == ChatTemplateFamily::ChatML ||
         family == ChatTemplateFamily::Llama3 || family == ChatTemplateFamily::Zephyr;
}

}  // namespace
}  // namespace morphserve::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace morphserve;
  using namespace morphserve::fuzz;
  using server::ChatTemplateFamily;
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  const bool add_generation_prompt = flags & 1;
  const std::vector<std::string_view> parts =
      split_parts(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  const std::string_view template_text = parts[0];
  const std::string bos(parts.size() > 1 ? parts[1] : "<s>");
  const std::string eos(parts.size() > 2 ? parts[2] : "</s>");
  std::vector<server::ChatMessage> messages;
  for (size_t i = 3; i < parts.size(); ++i) {
    static const char* const kRoles[] = {"system", "user", "assistant"};
    const std::string_view part = parts[i];
    const char* role = kRoles[part.empty() ? 1 : static_cast<unsigned char>(part[0]) % 3];
    messages.push_back({role, std::string(part.empty() ? part : part.substr(1))});
  }

  server::ChatTemplate t;
  if (flags & 2) {
    t = server::make_chat_template(static_cast<ChatTemplateFamily>((flags >> 2) % 7), bos, eos);
  } else {
    t = server::make_chat_template(template_text, bos, eos);
    check(t.family == server::detect_chat_template_family(template_text),
          "make_chat_template and detect_chat_template_family disagree");
    check(t.chatml_default_system.empty() || template_text.find(t.chatml_default_system) != std::string_view::npos,
          "the ChatML default system prompt is not a literal of the template");
  }
  const std::string_view name = server::chat_template_family_name(t.family);
  if (t.family != ChatTemplateFamily::Unknown) {
    check(server::parse_chat_template_family(name) == t.family, "a family name does not parse back", name);
  }

  std::string prompt;
  try {
    prompt = server::render_chat(t, messages, add_generation_prompt);
  } catch (const server::ApiError& e) {
    check(e.status() == 400, "render_chat refused with a status other than 400", e.what());
    check(!renders_anything(t.family), "a family that renders any conversation refused one", name);
    if (t.family == ChatTemplateFamily::Unknown) {
      check(e.code() == "unsupported_chat_template", "an unknown template refused without its error code");
    }
    return 0;
  }
  check(t.family != ChatTemplateFamily::Unknown, "an unknown template rendered a prompt");
  if (t.family == ChatTemplateFamily::Default || t.family == ChatTemplateFamily::ChatML) {
    for (const server::ChatMessage& m : messages) {
      check(prompt.find(m.content) != std::string::npos, "a ChatML prompt lacks a message's content");
    }
    if (add_generation_prompt) check(prompt.ends_with("<|im_start|>assistant\n"), "no ChatML generation prompt");
  }
  if (t.family == ChatTemplateFamily::Llama3) check(prompt.starts_with(t.bos_token), "a Llama 3 prompt lacks BOS");
  return 0;
}
