// libFuzzer target: bytes -> GgufFile::parse, then every typed look-up on what parsed, and for a
// file that carries llama metadata or a tokenizer, the readers that take a GgufFile
// (llama_config_from_gguf, vocab_from_gguf) and a Tokenizer built from the vocabulary. Malformed
// input must end in ModelFileError (InvalidArgument only where the tokenizer documents it); any
// other exception, crash or sanitizer report is a finding.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "fuzz_check.h"
#include "model/gguf_file.h"
#include "model/llama_config.h"
#include "model/tokenizer.h"
#include "model/tokenizer_vocab.h"
#include "model/utf8.h"

namespace morphserve::fuzz {
namespace {

// Runs one checked accessor; it may refuse, but only with ModelFileError. True when it answered.
template <typename Access>
bool answers(Access access) {
  try {
    access();
    return true;
  } catch (const ModelFileError&) {
    return false;
  }
}

// Every accessor of a value (arrays recursively: the parser bounds their depth) must either
// answer or refuse, and the ones that match the value's type must answer.
void touch_value(const GgufValue& v) {
  const bool is_uint = answers([&] { (void)v.as_uint(); });
  const bool is_int = answers([&] { (void)v.as_int(); });
  const bool is_float = answers([&] { (void)v.as_float(); });
  const bool is_bool = answers([&] { (void)v.as_bool(); });
  const bool is_string = answers([&] { (void)v.as_string(); });
  const bool is_array = answers([&] { (void)v.as_array(); });
  if (v.is_integer()) check(is_uint || is_int, "an integer value converts to neither uint nor int");
  if (v.is_integer() || v.is_float()) check(is_float, "a numeric value does not convert to double");
  check(is_bool == (v.type() == GgufType::BOOL), "as_bool disagrees with the value's type");
  check(is_string == (v.type() == GgufType::STRING), "as_string disagrees with the value's type");
  check(is_array == (v.type() == GgufType::ARRAY), "as_array disagrees with the value's type");
  if (!is_array) return;
  // Every element's type, but the accessors (most of which throw) only on the first few: a
  // vocabulary has thousands of elements, and exceptions would make each run take milliseconds.
  const GgufValue::Array& elements = v.as_array();
  for (size_t i = 0; i < elements.size(); ++i) {
    check(elements[i].type() == v.element_type(), "an array element has another type than the array's element type");
    if (i < 4 || elements[i].type() == GgufType::ARRAY) touch_value(elements[i]);
  }
}

void touch_metadata(const GgufFile& file) {
  for (const auto& entry : file.metadata()) {
    const std::string& key = entry.first;  // not a structured binding: clang 14 cannot capture those
    const GgufValue& value = entry.second;
    check(file.find(key) == &value, "find() does not return the entry of a unique key", key);
    check(&file.get(key) == &value, "get() does not return the entry of a unique key", key);
    touch_value(value);
    answers([&] { (void)file.get_string(key); });
    answers([&] { (void)file.get_uint(key); });
    answers([&] { (void)file.get_uint_opt(key); });
    answers([&] { (void)file.get_float_opt(key); });
    answers([&] { (void)file.get_bool_opt(key); });
    answers([&] { (void)file.get_string_opt(key); });
  }
  // libFuzzer learns the strings the target compares against and writes them into inputs, so the
  // "absent" key may well be present (a 5-minute run found that): only check it when it is not.
  if (file.find("fuzz.no.such.key") == nullptr) {
    check(!answers([&] { (void)file.get("fuzz.no.such.key"); }), "get() of an absent key answered");
  }
}

void touch_tensors(const GgufFile& file) {
  check(file.alignment() != 0 && (file.alignment() & (file.alignment() - 1)) == 0, "alignment is not a power of two");
  check(file.data_offset() % file.alignment() == 0, "the data section is not aligned");
  for (const GgufTensorInfo& t : file.tensors()) {
    check(file.find_tensor(t.name) == &t, "find_tensor() does not return a uniquely named tensor", t.name);
    check(!t.dims.empty() && t.dims.size() <= 4, "a tensor has 0 or more than 4 dimensions", t.name);
    check(t.elements() > 0, "a tensor has no elements", t.name);
    // The size must be what the shape and type imply, computed here without any chance to wrap.
    const auto blocks = static_cast<unsigned __int128>(t.elements() / dtype_block_elements(t.type));
    check(blocks * dtype_block_bytes(t.type) == t.bytes, "a tensor's size disagrees with its shape", t.name);
    check(t.offset % file.alignment() == 0, "a tensor offset is not aligned", t.name);
    check(file.data_offset() + t.offset + t.bytes <= file.file_size(), "a tensor's data lies past the end", t.name);
    // Read the first and last byte: ASan reports it if the pointer is not inside the image.
    if (t.bytes > 0) {
      volatile std::byte first = t.data[0];
      volatile std::byte last = t.data[t.bytes - 1];
      (void)first;
      (void)last;
    }
  }
}

// A vocabulary vocab_from_gguf accepted must make a working tokenizer.
void touch_tokenizer(Vocab vocab) {
  check(vocab_problem(vocab).empty(), "vocab_from_gguf returned a vocabulary vocab_problem() rejects");
  const Tokenizer tokenizer(std::move(vocab));  // must not throw: the vocabulary was checked
  for (const bool parse_special : {false, true}) {
    std::vector<int32_t> ids;
    try {
      ids = tokenizer.encode("Once upon a time <s></s><unk> caf\xC3\xA9 \xF0\x9F\x99\x82 \xFF", true, parse_special);
    } catch (const InvalidArgument&) {
      continue;  // documented: a character the vocabulary can represent no way at all
    }
    for (const int32_t id : ids) {
      check(id >= 0 && id < tokenizer.vocab_size(), "encode() produced an id outside the vocabulary");
    }
    const std::string text = tokenizer.decode(ids);
    check(is_valid_utf8(text), "decode() produced ill-formed UTF-8");
    StreamDecoder stream(tokenizer);
    std::string streamed;
    for (const int32_t id : ids) streamed += stream.push(id);
    streamed += stream.flush();
    check(streamed == text, "the stream decoder disagrees with decode()");
  }
}

void touch_model_readers(const GgufFile& file) {
  std::optional<std::string> architecture;
  if (!answers([&] { architecture = file.get_string_opt("general.architecture"); })) return;
  if (architecture == "llama") {
    try {
      const LlamaConfig config = llama_config_from_gguf(file);
      config.validate();  // what the reader returns has passed validation already
      // The widths the loader and the runner derive must be computable (UBSan reports an overflow).
      check(config.q_dim() > 0 && config.kv_dim() > 0, "a validated configuration has no attention width");
    } catch (const ModelFileError&) {
    }
  }
  if (!file.has("tokenizer.ggml.model")) return;
  Vocab vocab;
  try {
    vocab = vocab_from_gguf(file);
  } catch (const ModelFileError&) {
    return;
  }
  touch_tokenizer(std::move(vocab));
}

}  // namespace
}  // namespace morphserve::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace morphserve;
  const auto* begin = reinterpret_cast<const std::byte*>(data);
  std::optional<GgufFile> file;
  try {
    // A copy sized exactly to the input, so ASan flags any read past its end.
    file.emplace(GgufFile::parse("fuzz.gguf", std::vector<std::byte>(begin, begin + size)));
  } catch (const ModelFileError&) {
    return 0;
  }
  fuzz::check(file->file_size() == size, "file_size() differs from the image's size");
  fuzz::touch_metadata(*file);
  fuzz::touch_tensors(*file);
  fuzz::touch_model_readers(*file);
  return 0;
}
