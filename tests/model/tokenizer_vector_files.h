#pragma once
// Reading llama.cpp's tokenizer test vectors (models/ggml-vocab-*.gguf.inp / .gguf.out): the .inp
// holds each test string followed by a separator line, the .out one line of ids per string.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace morphserve::testing {

inline std::vector<std::string> split_vector_inputs(const std::string& raw) {
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<std::string> inputs;
  for (size_t pos = 0; pos < raw.size();) {
    const size_t next = raw.find(separator, pos);
    if (next == std::string::npos) {
      inputs.push_back(raw.substr(pos));
      break;
    }
    inputs.push_back(raw.substr(pos, next - pos));
    pos = next + separator.size();
  }
  return inputs;
}

inline std::vector<std::vector<int32_t>> read_vector_outputs(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<std::vector<int32_t>> outputs;
  for (std::string line; std::getline(in, line);) {
    std::istringstream ids(line);
    std::vector<int32_t> row;
    for (int32_t id; ids >> id;) row.push_back(id);
    outputs.push_back(std::move(row));
  }
  return outputs;
}

}  // namespace morphserve::testing
