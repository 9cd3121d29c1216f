// Our K-quant reference quantizers against llama.cpp's: a one-layer llama-shaped F32 GGUF goes
// through `llama-quantize --pure` (every matrix to one type, no importance matrix, i.e. llama.cpp's
// quantize_row_q*_K_ref), and every matrix of its output must equal our quantizer's bytes.
//
// The kernels suite links no model/ code, so this file writes and reads the few GGUF v3 pieces it
// needs itself (little-endian, 32-byte alignment); model/'s own reader and writer have their tests.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

#include "core/dtype.h"
#include "kernels/convert.h"
#include "llama_cpp_tools.h"

namespace morphserve {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kAlign = 32;

struct Tensor {
  std::string name;
  std::vector<uint64_t> dims;  // ggml order: dims[0] contiguous
  uint32_t type = 0;
  std::vector<std::byte> data;
};

class Out {
 public:
  template <typename T>
  void put(T v) {
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    bytes.insert(bytes.end(), p, p + sizeof(T));
  }
  void str(const std::string& s) {
    put<uint64_t>(s.size());
    for (char c : s) bytes.push_back(static_cast<std::byte>(c));
  }
  void pad() {
    while (bytes.size() % kAlign != 0) bytes.push_back(std::byte{0});
  }
  std::vector<std::byte> bytes;
};

// A minimal llama GGUF: the hyper-parameters llama-quantize's loader reads, and F32 tensors.
void write_gguf(const fs::path& path, const std::vector<Tensor>& tensors, uint32_t embd, uint32_t ffn) {
  Out o;
  o.put<uint32_t>(0x46554747);  // "GGUF"
  o.put<uint32_t>(3);
  o.put<uint64_t>(tensors.size());
  struct Kv {
    std::string key;
    uint32_t u32 = 0;
    float f32 = 0;
    std::string s;
    int kind;  // 4 u32, 6 f32, 8 string
  };
  const std::vector<Kv> kvs = {
      {"general.architecture", 0, 0, "llama", 8},
      {"llama.context_length", 256, 0, "", 4},
      {"llama.embedding_length", embd, 0, "", 4},
      {"llama.block_count", 1, 0, "", 4},
      {"llama.feed_forward_length", ffn, 0, "", 4},
      {"llama.attention.head_count", 4, 0, "", 4},
      {"llama.attention.head_count_kv", 4, 0, "", 4},
      {"llama.rope.dimension_count", embd / 4, 0, "", 4},
      {"llama.vocab_size", embd, 0, "", 4},
      {"llama.attention.layer_norm_rms_epsilon", 0, 1e-5f, "", 6},
  };
  o.put<uint64_t>(kvs.size());
  for (const Kv& kv : kvs) {
    o.str(kv.key);
    o.put<uint32_t>(static_cast<uint32_t>(kv.kind));
    if (kv.kind == 4) o.put<uint32_t>(kv.u32);
    if (kv.kind == 6) o.put<float>(kv.f32);
    if (kv.kind == 8) o.str(kv.s);
  }
  uint64_t offset = 0;
  for (const Tensor& t : tensors) {
    o.str(t.name);
    o.put<uint32_t>(static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) o.put<uint64_t>(d);
    o.put<uint32_t>(t.type);
    o.put<uint64_t>(offset);
    offset += (t.data.size() + kAlign - 1) / kAlign * kAlign;
  }
  o.pad();
  for (const Tensor& t : tensors) {
    o.bytes.insert(o.bytes.end(), t.data.begin(), t.data.end());
    o.pad();
  }
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(o.bytes.data()),
                                               static_cast<std::streamsize>(o.bytes.size()));
}

class In {
 public:
  explicit In(const fs::path& path) {
    std::ifstream f(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  template <typename T>
  T get() {
    if (at + sizeof(T) > bytes.size()) throw std::runtime_error("truncated GGUF");
    T v;
    std::memcpy(&v, bytes.data() + at, sizeof(T));
    at += sizeof(T);
    return v;
  }
  std::string str() {
    const uint64_t n = get<uint64_t>();
    if (at + n > bytes.size()) throw std::runtime_error("truncated GGUF string");
    std::string s(bytes.data() + at, n);
    at += n;
    return s;
  }
  void skip_value(uint32_t type) {
    static const std::map<uint32_t, size_t> kSizes = {{0, 1}, {1, 1}, {2, 2},  {3, 2},  {4, 4},  {5, 4},
                                                      {6, 4}, {7, 1}, {10, 8}, {11, 8}, {12, 8}};
    if (type == 8) {
      str();
    } else if (type == 9) {
      const uint32_t elem = get<uint32_t>();
      const uint64_t n = get<uint64_t>();
      for (uint64_t i = 0; i < n; ++i) skip_value(elem);
    } else {
      at += kSizes.at(type);
    }
  }
  std::string bytes;
  size_t at = 0;
};

std::map<std::string, Tensor> read_gguf(const fs::path& path) {
  In in(path);
  if (in.get<uint32_t>() != 0x46554747) throw std::runtime_error("not a GGUF file");
  in.get<uint32_t>();
  const uint64_t n_tensors = in.get<uint64_t>();
  const uint64_t n_kv = in.get<uint64_t>();
  uint64_t alignment = kAlign;
  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string key = in.str();
    const uint32_t type = in.get<uint32_t>();
    if (key == "general.alignment" && type == 4) {
      alignment = in.get<uint32_t>();
    } else {
      in.skip_value(type);
    }
  }
  std::vector<std::pair<Tensor, uint64_t>> infos;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    Tensor t;
    t.name = in.str();
    const uint32_t n_dims = in.get<uint32_t>();
    for (uint32_t d = 0; d < n_dims; ++d) t.dims.push_back(in.get<uint64_t>());
    t.type = in.get<uint32_t>();
    infos.emplace_back(std::move(t), in.get<uint64_t>());
  }
  const uint64_t data_start = (in.at + alignment - 1) / alignment * alignment;
  std::map<std::string, Tensor> out;
  for (auto& [t, offset] : infos) {
    uint64_t elements = 1;
    for (uint64_t d : t.dims) elements *= d;
    const DType type = static_cast<DType>(t.type);
    const size_t size = is_known_dtype(t.type) ? dtype_row_bytes(type, static_cast<int64_t>(t.dims[0])) * (elements / t.dims[0]) : 0;
    if (data_start + offset + size > in.bytes.size()) throw std::runtime_error("tensor data past the end");
    const auto* p = reinterpret_cast<const std::byte*>(in.bytes.data() + data_start + offset);
    t.data.assign(p, p + size);
    out[t.name] = std::move(t);
  }
  return out;
}

Tensor f32_tensor(const std::string& name, uint64_t cols, uint64_t rows, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 0.05f);
  Tensor t{name, rows > 1 ? std::vector<uint64_t>{cols, rows} : std::vector<uint64_t>{cols}, 0, {}};
  std::vector<float> v(cols * rows);
  for (size_t i = 0; i < v.size(); ++i) {
    v[i] = dist(rng);
    if (i % 97 == 5) v[i] *= 8.0f;                      // outliers, as real weights have
    if ((i / cols) % 5 == 2) v[i] += 0.03f;             // rows with an offset: mins matter
    if ((i / 256) % 11 == 3 && i % 2 == 0) v[i] = 0.0f;  // sparse super-blocks
  }
  t.data.resize(v.size() * sizeof(float));
  std::memcpy(t.data.data(), v.data(), t.data.size());
  return t;
}

class KQuantLlamaCpp : public ::testing::TestWithParam<DType> {};

TEST_P(KQuantLlamaCpp, QuantizerBytesMatchLlamaQuantize) {
  MORPHSERVE_REQUIRE_LLAMA_CPP();
  const DType type = GetParam();
  const uint32_t embd = 256, ffn = 512;
  std::mt19937 rng(42);
  std::vector<Tensor> tensors;
  tensors.push_back(f32_tensor("token_embd.weight", embd, embd, rng));
  tensors.push_back(f32_tensor("output_norm.weight", embd, 1, rng));
  tensors.push_back(f32_tensor("output.weight", embd, embd, rng));
  tensors.push_back(f32_tensor("blk.0.attn_norm.weight", embd, 1, rng));
  for (const char* name : {"attn_q", "attn_k", "attn_v", "attn_output"}) {
    tensors.push_back(f32_tensor(std::string("blk.0.") + name + ".weight", embd, embd, rng));
  }
  tensors.push_back(f32_tensor("blk.0.ffn_norm.weight", embd, 1, rng));
  tensors.push_back(f32_tensor("blk.0.ffn_gate.weight", embd, ffn, rng));
  tensors.push_back(f32_tensor("blk.0.ffn_up.weight", embd, ffn, rng));
  tensors.push_back(f32_tensor("blk.0.ffn_down.weight", ffn, embd, rng));

  const fs::path dir = fs::temp_directory_path() / ("morphserve-kquant-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path in = dir / "f32.gguf", out = dir / "quant.gguf";
  write_gguf(in, tensors, embd, ffn);
  const std::string ftype = type == DType::Q4_K ? "Q4_K_M" : type == DType::Q5_K ? "Q5_K_M" : "Q6_K";
  const testing::ToolResult r = testing::run_llama_cpp_tool("llama-quantize", {"--pure", in.string(), out.string(), ftype});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::map<std::string, Tensor> quantized = read_gguf(out);
  fs::remove_all(dir);

  int compared = 0;
  for (const Tensor& src : tensors) {
    if (src.dims.size() != 2) continue;
    SCOPED_TRACE(src.name);
    ASSERT_TRUE(quantized.count(src.name));
    const Tensor& q = quantized.at(src.name);
    ASSERT_EQ(q.type, static_cast<uint32_t>(type)) << ggml_type_name(q.type);
    const int64_t cols = static_cast<int64_t>(src.dims[0]), rows = static_cast<int64_t>(src.dims[1]);
    const size_t row_bytes = dtype_row_bytes(type, cols);
    ASSERT_EQ(q.data.size(), row_bytes * static_cast<size_t>(rows));
    const float* x = reinterpret_cast<const float*>(src.data.data());
    std::vector<std::byte> ours(row_bytes);
    std::vector<float> back(static_cast<size_t>(cols));
    double err2 = 0, val2 = 0;
    for (int64_t row = 0; row < rows; ++row) {
      convert_row_from_f32(type, x + row * cols, ours.data(), cols);
      const std::byte* theirs = q.data.data() + row_bytes * static_cast<size_t>(row);
      ASSERT_EQ(std::memcmp(ours.data(), theirs, row_bytes), 0) << "row " << row << " differs";
      dequantize_row(type, theirs, back.data(), cols);
      for (int64_t c = 0; c < cols; ++c) {
        const double e = static_cast<double>(back[static_cast<size_t>(c)]) - x[row * cols + c];
        err2 += e * e;
        val2 += static_cast<double>(x[row * cols + c]) * x[row * cols + c];
      }
    }
    // llama.cpp's bytes, dequantized, are as close to the input as the format allows.
    const double limit = type == DType::Q4_K ? 0.12 : type == DType::Q5_K ? 0.06 : 0.03;
    EXPECT_LT(std::sqrt(err2 / val2), limit);
    ++compared;
  }
  EXPECT_EQ(compared, 9);
}

INSTANTIATE_TEST_SUITE_P(KTypes, KQuantLlamaCpp, ::testing::Values(DType::Q4_K, DType::Q5_K, DType::Q6_K),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

}  // namespace
}  // namespace morphserve
