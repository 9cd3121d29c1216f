// Every way a model file can be broken gets one clear sentence and exit code 1, never a crash.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <vector>

#include <gtest/gtest.h>

#include "cli/run_command.h"
#include "model/gguf_file.h"
#include "model/gguf_writer.h"
#include "test_data.h"

namespace morphserve {
namespace {

using ::morphserve::testing::run_morphserve;

class BadModelFile : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = ::morphserve::testing::shared_data_file("models/stories260K.gguf");
    if (model_.empty()) GTEST_SKIP() << "models/stories260K.gguf not found under ../shared/data";
    dir_ = std::filesystem::temp_directory_path() / ("morphserve_bad_model_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    std::ifstream in(model_, std::ios::binary);
    bytes_.assign(std::istreambuf_iterator<char>(in), {});
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::string write_bytes(const std::string& name, const std::vector<char>& bytes) {
    const auto path = dir_ / name;
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path.string();
  }

  // Rewrites the model through our writer, letting `edit` drop or change metadata and tensors.
  std::string rewrite(const std::string& name,
                      const std::function<bool(const std::string&, GgufValue&)>& edit_key,
                      const std::function<bool(const std::string&, std::vector<int64_t>&)>& edit_tensor) {
    const GgufFile file = GgufFile::open(model_.string());
    GgufWriter writer;
    for (const auto& [key, value] : file.metadata()) {
      if (key == "general.alignment") continue;
      GgufValue copy = value;
      if (edit_key(key, copy)) writer.set(key, copy);
    }
    for (const GgufTensorInfo& t : file.tensors()) {
      std::vector<int64_t> dims = t.dims;
      if (!edit_tensor(t.name, dims)) continue;
      int64_t elements = 1;
      for (int64_t d : dims) elements *= d;
      std::vector<char> data(static_cast<size_t>(elements) * 4, 0);
      std::memcpy(data.data(), t.data, std::min(data.size(), t.bytes));
      writer.add_tensor(t.name, dims, t.type, data.data(), data.size());
    }
    const auto path = (dir_ / name).string();
    writer.write(path);
    return path;
  }

  void expect_clear_error(const std::string& path, const std::string& phrase) {
    for (const char* command : {"generate -n 4", "ppl --ctx 64 --text /etc/hostname"}) {
      const auto r = run_morphserve(std::string(command) + " -m " + path);
      EXPECT_EQ(r.signal, 0) << command << " crashed on " << phrase;
      EXPECT_EQ(r.exit_code, 1) << command << ": " << r.err;
      EXPECT_NE(r.err.find("morphserve: error: "), std::string::npos) << r.err;
      EXPECT_NE(r.err.find(phrase), std::string::npos) << "expected '" << phrase << "' in: " << r.err;
    }
  }

  std::filesystem::path model_;
  std::filesystem::path dir_;
  std::vector<char> bytes_;
};

auto keep_key = [](const std::string&, GgufValue&) { return true; };
auto keep_tensor = [](const std::string&, std::vector<int64_t>&) { return true; };

TEST_F(BadModelFile, TheUntouchedRewriteLoads) {
  const auto path = rewrite("good.gguf", keep_key, keep_tensor);
  const auto r = run_morphserve("generate -n 4 -m " + path);
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(BadModelFile, WrongMagic) {
  auto bytes = bytes_;
  std::memcpy(bytes.data(), "GGML", 4);
  expect_clear_error(write_bytes("magic.gguf", bytes), "not a GGUF file");
}

TEST_F(BadModelFile, UnsupportedVersion) {
  for (uint32_t version : {1u, 4u}) {
    auto bytes = bytes_;
    std::memcpy(bytes.data() + 4, &version, 4);
    expect_clear_error(write_bytes("version.gguf", bytes), "version");
  }
}

TEST_F(BadModelFile, Truncated) {
  for (size_t size : {size_t{3}, size_t{100}, size_t{14176}, bytes_.size() - 1}) {
    std::vector<char> bytes(bytes_.begin(), bytes_.begin() + static_cast<std::ptrdiff_t>(size));
    expect_clear_error(write_bytes("truncated.gguf", bytes), "truncated");
  }
}

TEST_F(BadModelFile, UnknownTensorType) {
  // The type field follows the first tensor's name, its dimension count and its dimensions.
  const std::string name = "token_embd.weight";
  auto bytes = bytes_;
  auto at = std::search(bytes.begin(), bytes.end(), name.begin(), name.end());
  ASSERT_NE(at, bytes.end());
  size_t offset = static_cast<size_t>(at - bytes.begin()) + name.size();
  uint32_t n_dims = 0;
  std::memcpy(&n_dims, bytes.data() + offset, 4);
  offset += 4 + 8 * n_dims;
  const uint32_t iq2_xxs = 16;
  std::memcpy(bytes.data() + offset, &iq2_xxs, 4);
  expect_clear_error(write_bytes("type.gguf", bytes), "iq2_xxs");
}

TEST_F(BadModelFile, UnsupportedArchitecture) {
  const auto path = rewrite("arch.gguf", [](const std::string& key, GgufValue& value) {
    if (key == "general.architecture") value = GgufValue::string("gpt2");
    return true;
  }, keep_tensor);
  expect_clear_error(path, "architecture 'gpt2'");
}

TEST_F(BadModelFile, MissingTensor) {
  const auto path = rewrite("missing.gguf", keep_key, [](const std::string& name, std::vector<int64_t>&) {
    return name != "blk.3.ffn_up.weight";
  });
  expect_clear_error(path, "missing tensor blk.3.ffn_up.weight");
}

TEST_F(BadModelFile, MisShapedTensor) {
  const auto path = rewrite("shape.gguf", keep_key, [](const std::string& name, std::vector<int64_t>& dims) {
    if (name == "blk.1.attn_k.weight") dims = {64, 64};
    return true;
  });
  expect_clear_error(path, "blk.1.attn_k.weight has shape [64, 64]");
}

TEST_F(BadModelFile, MissingHyperParameter) {
  const auto path = rewrite("key.gguf", [](const std::string& key, GgufValue&) { return key != "llama.block_count"; },
                            keep_tensor);
  expect_clear_error(path, "llama.block_count");
}

}  // namespace
}  // namespace morphserve
