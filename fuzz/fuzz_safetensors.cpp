// libFuzzer target for Hugging Face checkpoint files. The first byte picks the parser: even ->
// the bytes are a safetensors file (SafetensorsFile::parse, then every tensor's accessors), odd ->
// the rest is config.json text (parse_hf_config). Malformed input must end in ModelFileError; any
// other exception, crash or sanitizer report is a finding. A parsed file must also be
// self-consistent: tensors inside the buffer, in order, without overlap.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "fuzz_check.h"
#include "model/hf_config.h"
#include "model/safetensors_file.h"

namespace morphserve::fuzz {
namespace {

void fuzz_safetensors(const uint8_t* data, size_t size) {
  std::vector<std::byte> bytes(size);
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::byte>(data[i]);
  try {
    const SafetensorsFile file = SafetensorsFile::parse("fuzz.safetensors", std::move(bytes));
    uint64_t end = 0;
    for (const SafetensorsTensor& t : file.tensors()) {
      check(t.offset >= end, "tensors overlap or are out of order", t.name);
      check(file.data_offset() + t.offset + t.bytes <= file.file_size(), "tensor data past the end", t.name);
      end = t.offset + t.bytes;
      check(file.find_tensor(t.name) == &t, "find_tensor does not find a listed tensor", t.name);
      if (t.supported()) {
        check(t.data().size() == t.bytes, "data() size differs from the header's", t.name);
        (void)t.dtype();
      } else {
        try {
          (void)t.dtype();
          property_failed("dtype() accepted an unsupported type", t.name);
        } catch (const ModelFileError&) {
        }
      }
    }
  } catch (const ModelFileError&) {
  }
}

void fuzz_config(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const HfConfig config = parse_hf_config(text, "fuzz/config.json");
    check(config.num_attention_heads > 0, "a parsed config without attention heads");
    // What the writer makes of it must read back the same.
    check(parse_hf_config(hf_config_to_json(config), "round trip") == config, "config.json round trip differs");
  } catch (const ModelFileError&) {
  }
}

}  // namespace
}  // namespace morphserve::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  if (data[0] % 2 == 0) {
    morphserve::fuzz::fuzz_safetensors(data + 1, size - 1);
  } else {
    morphserve::fuzz::fuzz_config(data + 1, size - 1);
  }
  return 0;
}
