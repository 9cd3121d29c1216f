// The replica store: ladders, bit-exact replicas, the replica GGUF file and how a stale, truncated
// or foreign replica file is refused or rewritten.
#include "morph/replica_store.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "engine/model_loader.h"
#include "kernels/thread_pool.h"
#include "model/dummy_model.h"
#include "model/gguf_file.h"
#include "model/gguf_test_support.h"
#include "morph/llama_gguf_fixture.h"
#include "morph/replica_file.h"
#include "quant/quantize.h"
#include "test_data.h"
#include "test_backend.h"

namespace morphserve {
namespace {

using ::morphserve::testing::TempDir;
using ::morphserve::testing::write_llama_gguf;

ThreadPool& pool() {
  static ThreadPool p(2);
  return p;
}

bool same_bytes(const MatrixView& v, const void* data, size_t bytes) {
  return v.bytes() == bytes && std::memcmp(v.data, data, bytes) == 0;
}

// Every rung of every layer holds exactly what convert_matrix makes of the original matrix, and a
// matrix that cannot (or need not) change type is the full-precision one itself.
void expect_replicas_of(const ReplicaStore& store, const LlamaModel& model) {
  ASSERT_EQ(store.n_layers(), model.config.n_layers);
  for (int l = 0; l < store.n_layers(); ++l) {
    const LayerWeights& layer = model.weights.layers[static_cast<size_t>(l)];
    const LayerLinears& full = store.replica(l, store.full_precision(l));
    for (size_t i = 0; i < LayerLinears::kCount; ++i) {
      const WeightMatrix& m = *layer.linears()[i];
      EXPECT_TRUE(same_bytes(full.m[i], m.data.data(), m.bytes())) << "layer " << l << " matrix " << i;
    }
    for (DType rung : store.ladder(l)) {
      const LayerLinears& views = store.replica(l, rung);
      EXPECT_TRUE(views.same_shapes(full));
      for (size_t i = 0; i < LayerLinears::kCount; ++i) {
        const MatrixView& v = views.m[i];
        if (v.type == full.m[i].type) {
          EXPECT_EQ(v.data, full.m[i].data) << "a matrix that keeps its type is not duplicated";
          continue;
        }
        EXPECT_EQ(v.type, rung);
        const AlignedBuffer expected = convert_matrix(layer.linears()[i]->view(), rung);
        EXPECT_TRUE(same_bytes(v, expected.data(), expected.size()))
            << "layer " << l << " matrix " << i << " at " << dtype_name(rung);
      }
    }
  }
}

TEST(ReplicaLadder, FloatModelsGetQ8AndQ4BelowTheirStoredType) {
  for (DType type : {DType::F32, DType::F16, DType::BF16}) {
    const LlamaModel model = make_dummy_model("tiny", type, test_backend());
    const auto store = ReplicaStore::in_memory(model, pool());
    for (int l = 0; l < store->n_layers(); ++l) {
      EXPECT_EQ(store->ladder(l), (std::vector<DType>{type, DType::Q8_0, DType::Q4_0})) << dtype_name(type);
      EXPECT_EQ(store->full_precision(l), type);
      size_t previous = SIZE_MAX;
      for (DType rung : store->ladder(l)) {
        const size_t bytes = store->replica(l, rung).bytes();
        EXPECT_LT(bytes, previous) << dtype_name(rung);
        previous = bytes;
      }
    }
  }
}

TEST(ReplicaLadder, QuantizedModelsStartAtTheirOwnType) {
  const LlamaModel w8 = load_model("dummy:tiny:w8", "", pool(), test_backend());
  const LlamaModel w4 = load_model("dummy:tiny:w4", "", pool(), test_backend());
  const auto s8 = ReplicaStore::in_memory(w8, pool());
  const auto s4 = ReplicaStore::in_memory(w4, pool());
  EXPECT_EQ(s8->ladder(0), (std::vector<DType>{DType::Q8_0, DType::Q4_0}));
  EXPECT_EQ(s4->ladder(0), (std::vector<DType>{DType::Q4_0}));
  expect_replicas_of(*s8, w8);
  expect_replicas_of(*s4, w4);
}

TEST(ReplicaLadder, MixedLayersNeverRepeatARungOrUpcast) {
  // Mostly Q8_0 with one F16 matrix: the layer is "at Q8_0" already; Q4_0 is the only step down.
  LlamaModel model = load_model("dummy:tiny:w8", "", pool(), test_backend());
  const LlamaModel f16 = make_dummy_model("tiny", DType::F16, test_backend());
  LayerWeights& layer = model.weights.layers[0];
  const MatrixView f16_wk = f16.weights.layers[0].wk.view();
  layer.wk = WeightMatrix(test_backend(), DType::F16, f16_wk.rows, f16_wk.cols,
                          [&](std::byte* host) { std::memcpy(host, f16_wk.data, f16_wk.bytes()); });
  const auto store = ReplicaStore::in_memory(model, pool());
  EXPECT_EQ(store->ladder(0), (std::vector<DType>{DType::Q8_0, DType::Q4_0}));
  EXPECT_EQ(store->replica(0, DType::Q4_0).wk().type, DType::Q4_0);
  // A Q4_0 matrix on the Q8_0 rung stays Q4_0 rather than growing.
  const MatrixView q4{DType::Q4_0, nullptr, 64, 128};
  EXPECT_EQ(replica_type(q4, DType::Q8_0), DType::Q4_0);
  EXPECT_EQ(replica_type(q4, DType::Q4_0), DType::Q4_0);
  const MatrixView narrow{DType::F32, nullptr, 64, 172};
  EXPECT_EQ(replica_type(narrow, DType::Q4_0), DType::F32);
}

TEST(ReplicaStoreMemory, ReplicasAreBitExactConversionsOfOwnedCopies) {
  auto model = std::make_unique<LlamaModel>(make_dummy_model("tiny", DType::F16, test_backend()));
  const auto store = ReplicaStore::in_memory(*model, pool());
  EXPECT_EQ(store->description(), "memory");
  expect_replicas_of(*store, *model);
  // The engine frees the model's buffers after building the store: the store must not point at them.
  const LayerLinears& full = store->replica(1, DType::F16);
  EXPECT_NE(full.wq().data, model->weights.layers[1].wq.data.data());
  const AlignedBuffer wq = convert_matrix(full.wq(), DType::F16);
  model.reset();
  EXPECT_TRUE(same_bytes(store->replica(1, DType::F16).wq(), wq.data(), wq.size()));
}

TEST(ReplicaStoreMemory, AWidthNotAMultipleOf32StaysFloatOnEveryRung) {
  LlamaModel model = make_dummy_model("tiny", DType::F32, test_backend());
  LayerWeights& layer = model.weights.layers[2];
  layer.w_down = WeightMatrix(test_backend(), DType::F32, 128, 40, [](std::byte* host) {
    for (int64_t i = 0; i < 128 * 40; ++i) reinterpret_cast<float*>(host)[i] = static_cast<float>(i % 7) - 3.0f;
  });
  const auto store = ReplicaStore::in_memory(model, pool());
  EXPECT_EQ(store->ladder(2), (std::vector<DType>{DType::F32, DType::Q8_0, DType::Q4_0}));
  const MatrixView& full = store->replica(2, DType::F32).w_down();
  for (DType rung : {DType::Q8_0, DType::Q4_0}) {
    EXPECT_EQ(store->replica(2, rung).w_down().type, DType::F32);
    EXPECT_EQ(store->replica(2, rung).w_down().data, full.data);
    EXPECT_EQ(store->replica(2, rung).w_up().type, rung);
  }
  expect_replicas_of(*store, model);
}

TEST(ReplicaStoreMemory, LayersAndPrecisionsOutsideTheStoreAreRejected) {
  const LlamaModel model = load_model("dummy:tiny:w4", "", pool(), test_backend());
  const auto store = ReplicaStore::in_memory(model, pool());
  EXPECT_THROW(store->ladder(-1), InvalidArgument);
  EXPECT_THROW(store->ladder(store->n_layers()), InvalidArgument);
  EXPECT_THROW(store->replica(4, DType::Q4_0), InvalidArgument);
  try {
    store->replica(0, DType::Q8_0);
    ADD_FAILURE() << "a Q4_0 model has no Q8_0 replica";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("no q8_0 replica"), std::string::npos) << e.what();
  }
}

TEST(ReplicaPath, SitsBesideTheModel) {
  EXPECT_EQ(default_replica_path("/models/llama.gguf"), "/models/llama.replicas.gguf");
  EXPECT_EQ(default_replica_path("model.bin"), "model.bin.replicas.gguf");
  EXPECT_EQ(default_replica_path(".gguf"), ".gguf.replicas.gguf");
}

// A dummy model written as a GGUF file in a fresh folder, with its replica path beside it.
class ReplicaFile : public ::testing::Test {
 protected:
  void SetUp() override { write_model(make_dummy_model("tiny", DType::F16, test_backend())); }
  void write_model(LlamaModel m) {
    current.emplace(std::move(m));
    write_llama_gguf(*current, model_path);
  }
  const LlamaModel& model() const { return *current; }
  std::string message_of_open(bool create) {
    try {
      ReplicaStore::open(model_path, replica_path, create, pool());
    } catch (const ModelFileError& e) {
      return e.what();
    }
    return "";
  }
  std::vector<std::string> files() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir.path())) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

  TempDir dir;
  std::string model_path = dir.file("model.gguf");
  std::string replica_path = dir.file("model.replicas.gguf");
  std::optional<LlamaModel> current;  // what model_path holds
};

TEST_F(ReplicaFile, WrittenThenOpenedHoldsBitExactReplicas) {
  std::vector<std::pair<size_t, size_t>> calls;
  write_replica_file(model_path, replica_path, pool(), [&](size_t done, size_t total) { calls.emplace_back(done, total); });
  // Four layers, two quantized rungs, seven matrices each; no temporary file left behind.
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls.front(), std::make_pair(size_t{0}, size_t{56}));
  EXPECT_EQ(calls.back(), std::make_pair(size_t{56}, size_t{56}));
  EXPECT_EQ(files(), (std::vector<std::string>{"model.gguf", "model.replicas.gguf"}));

  const GgufFile file = GgufFile::open(replica_path);
  EXPECT_EQ(file.get_string("general.architecture"), "morphserve.replicas");
  EXPECT_EQ(file.get_uint("morphserve.replicas.layer_count"), 4u);
  EXPECT_EQ(file.get_uint("morphserve.replicas.source.file_size"), std::filesystem::file_size(model_path));
  ASSERT_EQ(file.tensors().size(), 56u);
  EXPECT_EQ(file.tensors()[0].name, "q8_0/blk.0.attn_q.weight");
  EXPECT_EQ(file.tensors()[7].name, "q4_0/blk.0.attn_q.weight");
  EXPECT_EQ(file.tensors()[13].dims, (std::vector<int64_t>{352, 128}));  // q4_0/blk.0.ffn_down: [cols, rows]

  const auto store = ReplicaStore::open(model_path, replica_path, false, pool());
  EXPECT_EQ(store->description(), replica_path);
  EXPECT_EQ(store->ladder(3), (std::vector<DType>{DType::F16, DType::Q8_0, DType::Q4_0}));
  expect_replicas_of(*store, model());
  // Full precision is read from the model file's mapping, not copied.
  const GgufFile model_file = GgufFile::open(model_path);
  const MatrixView& wq = store->replica(0, DType::F16).wq();
  EXPECT_TRUE(same_bytes(wq, model_file.find_tensor("blk.0.attn_q.weight")->data, wq.bytes()));
}

TEST_F(ReplicaFile, MissingFileIsRefusedOrCreated) {
  const std::string message = message_of_open(false);
  EXPECT_NE(message.find(replica_path + " does not exist"), std::string::npos) << message;
  EXPECT_NE(message.find("morphserve quantize -m " + model_path + " -o " + replica_path), std::string::npos) << message;
  EXPECT_FALSE(std::filesystem::exists(replica_path));

  size_t last_done = 0;
  const auto store = ReplicaStore::open(model_path, replica_path, true, pool(), [&](size_t done, size_t) { last_done = done; });
  EXPECT_EQ(last_done, 56u);
  expect_replicas_of(*store, model());
}

TEST_F(ReplicaFile, StaleFileIsRefusedOrRewritten) {
  write_replica_file(model_path, replica_path, pool());
  // Same shapes and file size, different weights (a fine-tune exported the same way).
  LlamaModel changed = make_dummy_model("tiny", DType::F16, test_backend());
  reinterpret_cast<uint16_t*>(changed.weights.layers[0].wq.data.data())[0] ^= 0x0101;  // CPU memory
  write_model(std::move(changed));
  std::string message = message_of_open(false);
  EXPECT_NE(message.find("different model file"), std::string::npos) << message;
  EXPECT_NE(message.find("morphserve quantize -m"), std::string::npos) << message;
  expect_replicas_of(*ReplicaStore::open(model_path, replica_path, true, pool()), model());

  // Only the metadata changed.
  LlamaModel renamed = make_dummy_model("tiny", DType::F16, test_backend());
  renamed.config.name = "dummy-renamed";
  write_model(std::move(renamed));
  EXPECT_NE(message_of_open(false).find("different model file"), std::string::npos);

  // Another model altogether (F32 weights: different shapes on disk and a bigger file).
  write_model(make_dummy_model("tiny", DType::F32, test_backend()));
  EXPECT_NE(message_of_open(false).find("different model file"), std::string::npos);
  expect_replicas_of(*ReplicaStore::open(model_path, replica_path, true, pool()), model());
  EXPECT_EQ(message_of_open(false), "");
}

TEST_F(ReplicaFile, TruncatedFileIsAModelFileErrorAndIsRewrittenOnRequest) {
  write_replica_file(model_path, replica_path, pool());
  const std::string whole = ::morphserve::testing::read_bytes(replica_path);
  for (size_t size : {size_t{0}, size_t{100}, whole.size() / 2, whole.size() - 1}) {
    ::morphserve::testing::write_bytes(replica_path, std::string_view(whole).substr(0, size));
    const std::string message = message_of_open(false);
    EXPECT_NE(message.find(replica_path), std::string::npos) << size << ": " << message;
    EXPECT_NE(message.find("morphserve quantize"), std::string::npos) << size << ": " << message;
  }
  EXPECT_THROW(ReplicaStore::open(model_path, replica_path, false, pool()), ModelFileError);
  expect_replicas_of(*ReplicaStore::open(model_path, replica_path, true, pool()), model());
  EXPECT_EQ(::morphserve::testing::read_bytes(replica_path), whole);
}

TEST_F(ReplicaFile, AnotherGgufIsRefusedAndNeverOverwritten) {
  // Most likely a mistyped path to another model: refused, and never overwritten.
  std::filesystem::copy_file(model_path, replica_path);
  for (bool create : {false, true}) {
    const std::string message = message_of_open(create);
    EXPECT_NE(message.find(replica_path + " is not a morphserve replica file (its architecture is 'llama')"),
              std::string::npos)
        << message;
  }
  EXPECT_NE(message_of_open(true).find("left untouched"), std::string::npos);
  EXPECT_EQ(::morphserve::testing::read_bytes(replica_path), ::morphserve::testing::read_bytes(model_path));
  // Nor is the model itself ever replaced by its replicas.
  EXPECT_THROW(write_replica_file(model_path, model_path, pool()), InvalidArgument);
  EXPECT_THROW(ReplicaStore::open(model_path, model_path, true, pool()), ModelFileError);
  EXPECT_EQ(::morphserve::testing::read_bytes(replica_path), ::morphserve::testing::read_bytes(model_path));
}

TEST_F(ReplicaFile, AQ8ModelStoresOnlyItsQ4Rung) {
  write_model(load_model("dummy:tiny:w8", "", pool(), test_backend()));
  write_replica_file(model_path, replica_path, pool());
  const GgufFile file = GgufFile::open(replica_path);
  ASSERT_EQ(file.tensors().size(), 28u);
  for (const GgufTensorInfo& t : file.tensors()) {
    EXPECT_TRUE(t.name.starts_with("q4_0/")) << t.name;
    EXPECT_EQ(t.type, DType::Q4_0) << t.name;
  }
  const auto store = ReplicaStore::open(model_path, replica_path, false, pool());
  EXPECT_EQ(store->ladder(0), (std::vector<DType>{DType::Q8_0, DType::Q4_0}));
  expect_replicas_of(*store, model());
}

TEST_F(ReplicaFile, UnwritableOutputAndMissingModelGetClearErrors) {
  const std::string out = dir.file("no-such-folder/model.replicas.gguf");
  try {
    write_replica_file(model_path, out, pool());
    ADD_FAILURE() << "wrote into a missing folder";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("cannot write the replica file " + out), std::string::npos) << e.what();
  }
  EXPECT_THROW(ReplicaStore::open(model_path, out, true, pool()), InvalidArgument);
  EXPECT_THROW(write_replica_file(dir.file("absent.gguf"), replica_path, pool()), ModelFileError);
  EXPECT_THROW(ReplicaStore::open(dir.file("absent.gguf"), replica_path, true, pool()), ModelFileError);
  EXPECT_EQ(files(), (std::vector<std::string>{"model.gguf"}));
}

TEST(ReplicaStories260K, NarrowFfnDownStaysF32InTheModelMapping) {
  MORPHSERVE_REQUIRE_DATA(model_path, "models/stories260K.gguf");
  TempDir dir;
  const std::string replica_path = dir.file("stories260K.replicas.gguf");
  const auto store = ReplicaStore::open(model_path.string(), replica_path, true, pool());
  const LlamaModel model = load_llama_gguf(model_path.string(), test_backend());
  ASSERT_EQ(store->n_layers(), model.config.n_layers);
  const GgufFile model_file = GgufFile::open(model_path.string());
  const GgufFile replica_file = GgufFile::open(replica_path);
  for (int l = 0; l < store->n_layers(); ++l) {
    EXPECT_EQ(store->ladder(l), (std::vector<DType>{DType::F32, DType::Q8_0, DType::Q4_0}));
    const std::string down = "blk." + std::to_string(l) + ".ffn_down.weight";
    const GgufTensorInfo* info = model_file.find_tensor(down);
    ASSERT_NE(info, nullptr);
    ASSERT_EQ(info->dims[0], 172);
    EXPECT_EQ(replica_file.find_tensor("q8_0/" + down), nullptr);
    EXPECT_EQ(replica_file.find_tensor("q4_0/" + down), nullptr);
    const MatrixView& full = store->replica(l, DType::F32).w_down();
    for (DType rung : {DType::Q8_0, DType::Q4_0}) {
      const MatrixView& v = store->replica(l, rung).w_down();
      EXPECT_EQ(v.type, DType::F32);
      EXPECT_EQ(v.data, full.data);
      EXPECT_TRUE(same_bytes(v, info->data, info->bytes));
    }
  }
  expect_replicas_of(*store, model);
}

}  // namespace
}  // namespace morphserve
