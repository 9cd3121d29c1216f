// Model and replica files that change under a running server: SourceFile notices deletion,
// replacement, truncation and in-place edits and reads with pread (a short read, never a SIGBUS);
// the swapper refuses to swap from such a file and a restore that loses its file mid-way puts the
// layer back where it was, still computing what it did.
#include "backend/cpu_backend.h"
#include "morph/source_file.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/memory_budget.h"
#include "engine/kv_block_pool.h"
#include "engine/llama_runner.h"
#include "engine/model_loader.h"
#include "kernels/thread_pool.h"
#include "model/dummy_model.h"
#include "model/gguf_test_support.h"
#include "morph/layer_swapper.h"
#include "morph/llama_gguf_fixture.h"
#include "morph/replica_store.h"
#include "test_backend.h"

namespace morphserve {
namespace {

using ::morphserve::testing::TempDir;
namespace fs = std::filesystem;

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(SourceFile, ReadsTheFileItOpenedWhileItIsUnchanged) {
  TempDir dir;
  const std::string path = dir.file("f.bin");
  write_text(path, "0123456789");
  const SourceFile file(path);
  EXPECT_EQ(file.size(), 10u);
  EXPECT_EQ(file.problem(), "");
  std::string out(4, '\0');
  file.read(3, reinterpret_cast<std::byte*>(out.data()), out.size());
  EXPECT_EQ(out, "3456");
}

TEST(SourceFile, TruncationIsAProblemAndAShortReadNotASignal) {
  TempDir dir;
  const std::string path = dir.file("f.bin");
  write_text(path, std::string(8192, 'x'));
  const SourceFile file(path);
  fs::resize_file(path, 100);
  EXPECT_TRUE(contains(file.problem(), "truncated on disk from 8192 to 100 bytes")) << file.problem();
  std::vector<std::byte> out(4096);
  try {
    file.read(4096, out.data(), out.size());
    ADD_FAILURE() << "reading past the new end must throw";
  } catch (const ModelFileError& e) {
    EXPECT_TRUE(contains(e.what(), path)) << e.what();
  }
}

TEST(SourceFile, DeletionReplacementAndInPlaceEditsAreProblems) {
  TempDir dir;
  const std::string path = dir.file("f.bin");
  write_text(path, "original");
  {
    const SourceFile file(path);
    fs::remove(path);
    EXPECT_TRUE(contains(file.problem(), "was deleted or renamed")) << file.problem();
  }
  write_text(path, "original");
  {
    const SourceFile file(path);
    write_text(dir.file("new.bin"), "original");
    fs::rename(dir.file("new.bin"), path);  // what an atomic rewrite does
    EXPECT_TRUE(contains(file.problem(), "was replaced by another file")) << file.problem();
  }
  {
    const SourceFile file(path);
    // Same size, new bytes: only the modification time tells. Make sure it moves.
    fs::last_write_time(path, fs::last_write_time(path) - std::chrono::seconds(5));
    EXPECT_TRUE(contains(file.problem(), "was modified on disk")) << file.problem();
  }
}

TEST(SourceFile, AMissingFileIsAModelFileError) {
  TempDir dir;
  EXPECT_THROW(SourceFile(dir.file("none.bin")), ModelFileError);
}

// A dummy model written as GGUF with its replica file, loaded and wired as the server wires it.
class FileSwap : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::write_llama_gguf(make_dummy_model("tiny", DType::F16, test_backend()), model_path);
    store = ReplicaStore::open(model_path, replica_path, /*create_if_missing=*/true, pool);
    model = std::make_unique<LlamaModel>(load_model(model_path, "", pool, test_backend()));
    kv = std::make_unique<KvBlockPool>(
        KvLayout{model->config.n_layers, 16, model->config.kv_dim(), DType::F16}, 64, test_backend());
    runner = std::make_unique<LlamaRunner>(*model, *kv, test_backend(), 256);
    swapper = std::make_unique<LayerSwapper>(*store, 1, backend);
    swapper->attach(*model, *runner);
  }

  std::vector<SwapRecord> settle() {
    std::vector<SwapRecord> done;
    for (int i = 0; i < 100000 && swapper->in_flight() > 0; ++i) {
      for (SwapRecord& r : swapper->advance(*kv, *runner)) done.push_back(r);
      swapper->check_invariants(*kv);
      if (swapper->in_flight() > 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    EXPECT_EQ(swapper->in_flight(), 0) << "a swap never ended";
    return done;
  }

  // Logits of a fixed prompt, in a fresh sequence each time (what the layer computes now).
  std::vector<float> logits() {
    SequenceKv seq;
    const std::vector<int32_t> tokens = {1, 17, 42, 99, 7};
    EXPECT_TRUE(seq.reserve(*kv, static_cast<int64_t>(tokens.size())));
    const BatchSequence b{tokens, 0, &seq.blocks, false};
    const auto out = runner->forward(std::span(&b, 1));
    std::vector<float> result(out.begin(), out.end());
    seq.release_all(*kv);
    return result;
  }

  TempDir dir;
  std::string model_path = dir.file("model.gguf");
  std::string replica_path = dir.file("model.replicas.gguf");
  ThreadPool pool{2};
  MemoryBudget budget{size_t{1} << 30};
  CpuBackend backend{budget, pool};
  std::unique_ptr<ReplicaStore> store;
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<KvBlockPool> kv;
  std::unique_ptr<LlamaRunner> runner;
  std::unique_ptr<LayerSwapper> swapper;
};

TEST_F(FileSwap, SwapsReadThroughTheFilesWhileTheyAreIntact) {
  const std::vector<float> full = logits();
  ASSERT_TRUE(swapper->start(1, DType::Q4_0, *kv));
  settle();
  EXPECT_EQ(swapper->precision(1), DType::Q4_0);
  EXPECT_NE(logits(), full);
  ASSERT_TRUE(swapper->start(1, DType::F16, *kv));
  const auto done = settle();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].error, "");
  EXPECT_EQ(logits(), full) << "a restore read back through pread gives the model's own weights";
}

TEST_F(FileSwap, ADeletedReplicaFileIsRefusedAndTheLayerStaysAtFullPrecision) {
  const std::vector<float> full = logits();
  fs::remove(replica_path);
  EXPECT_TRUE(contains(store->any_source_problem(), "was deleted")) << store->any_source_problem();
  try {
    swapper->start(0, DType::Q8_0, *kv);
    ADD_FAILURE() << "a swap from a deleted replica file must be refused";
  } catch (const ModelFileError& e) {
    EXPECT_TRUE(contains(e.what(), "layer 0 cannot move to q8_0")) << e.what();
    EXPECT_TRUE(contains(e.what(), replica_path)) << e.what();
  }
  EXPECT_EQ(swapper->in_flight(), 0);
  EXPECT_EQ(swapper->free_slots(), 1);
  EXPECT_EQ(swapper->precision(0), DType::F16);
  swapper->check_invariants(*kv);
  EXPECT_EQ(logits(), full);
}

TEST_F(FileSwap, ATruncatedModelFileKeepsAQuantizedLayerWhereItIs) {
  ASSERT_TRUE(swapper->start(2, DType::Q8_0, *kv));
  settle();
  const std::vector<float> quantized = logits();
  const int64_t grown = kv->capacity_blocks();
  fs::resize_file(model_path, fs::file_size(model_path) / 2);
  EXPECT_THROW(swapper->start(2, DType::F16, *kv), ModelFileError);
  EXPECT_EQ(swapper->precision(2), DType::Q8_0);
  EXPECT_EQ(kv->capacity_blocks(), grown) << "the lent blocks stay lent";
  swapper->check_invariants(*kv);
  EXPECT_EQ(logits(), quantized);
}

TEST_F(FileSwap, AFileTruncatedDuringARestoreLeavesTheLayerAsItWas) {
  ASSERT_TRUE(swapper->start(3, DType::Q4_0, *kv));
  settle();
  const std::vector<float> quantized = logits();
  const int64_t grown = kv->capacity_blocks();
  // The restore's checks pass at its start; the file goes while it stages.
  ASSERT_TRUE(swapper->start(3, DType::F16, *kv));
  fs::resize_file(model_path, 64);
  const auto done = settle();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_TRUE(done[0].source_changed);
  EXPECT_TRUE(contains(done[0].error, "truncated")) << done[0].error;
  EXPECT_EQ(done[0].from, DType::Q4_0);
  EXPECT_EQ(swapper->precision(3), DType::Q4_0);
  EXPECT_EQ(swapper->free_slots(), 1);
  EXPECT_EQ(kv->capacity_blocks(), grown);
  swapper->check_invariants(*kv);
  EXPECT_EQ(logits(), quantized);
}

// A store whose copies fail on demand, in the middle of a swap, where no file check can see it
// coming (a file truncated between the last check and the read).
class FailingStore : public ReplicaStore {
 public:
  explicit FailingStore(std::unique_ptr<ReplicaStore> inner) : inner_(std::move(inner)) {
    for (int l = 0; l < inner_->n_layers(); ++l) {
      ladders_.push_back(inner_->ladder(l));
      auto& rungs = replicas_.emplace_back();
      for (DType p : ladders_.back()) rungs.push_back(inner_->replica(l, p));
    }
    description_ = "failing";
  }
  void copy_to(int layer, DType precision, const PackedLayer& packing, std::byte* base) const override {
    if (fail) {
      // Part of the copy lands before the failure, as with a short read.
      std::memset(base, 0x7f, packing.bytes / 2);
      throw ModelFileError("the copy failed half-way");
    }
    inner_->copy_to(layer, precision, packing, base);
  }
  std::atomic<bool> fail{false};

 private:
  std::unique_ptr<ReplicaStore> inner_;
};

TEST(FailedCopy, ACopyIntoTheRegionThatFailsHalfWayIsUndoneFromTheSlot) {
  ThreadPool pool(2);
  LlamaModel model = make_dummy_model("tiny", DType::F16, test_backend());
  FailingStore store(ReplicaStore::in_memory(model, pool));
  MemoryBudget budget(size_t{1} << 30);
  CpuBackend backend(budget, pool);
  KvBlockPool kv(KvLayout{model.config.n_layers, 16, model.config.kv_dim(), DType::F16}, 64, test_backend());
  LlamaRunner runner(model, kv, test_backend(), 256);
  LayerSwapper swapper(store, 1, backend);
  swapper.attach(model, runner);
  auto settle = [&] {
    std::vector<SwapRecord> done;
    while (swapper.in_flight() > 0) {
      for (SwapRecord& r : swapper.advance(kv, runner)) done.push_back(r);
      swapper.check_invariants(kv);
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    return done;
  };
  auto logits = [&] {
    SequenceKv seq;
    const std::vector<int32_t> tokens = {3, 1, 4, 1, 5};
    EXPECT_TRUE(seq.reserve(kv, static_cast<int64_t>(tokens.size())));
    const BatchSequence b{tokens, 0, &seq.blocks, false};
    const auto out = runner.forward(std::span(&b, 1));
    std::vector<float> result(out.begin(), out.end());
    seq.release_all(kv);
    return result;
  };

  // Down: the copy into the staging slot fails; nothing changed.
  const std::vector<float> full = logits();
  store.fail = true;
  ASSERT_TRUE(swapper.start(1, DType::Q4_0, kv));
  auto done = settle();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].error, "the copy failed half-way");
  EXPECT_EQ(swapper.precision(1), DType::F16);
  EXPECT_EQ(logits(), full);

  // Up: the copy into the region (the runner reads the slot meanwhile) fails half-way.
  store.fail = false;
  ASSERT_TRUE(swapper.start(1, DType::Q4_0, kv));
  settle();
  const std::vector<float> quantized = logits();
  const int64_t grown = kv.capacity_blocks();
  ASSERT_TRUE(swapper.start(1, DType::F16, kv));
  store.fail = true;
  done = settle();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_TRUE(done[0].source_changed);
  EXPECT_EQ(done[0].direction, SwapDirection::Up);
  EXPECT_EQ(swapper.precision(1), DType::Q4_0);
  EXPECT_EQ(swapper.free_slots(), 1);
  EXPECT_EQ(kv.capacity_blocks(), grown) << "the region's tail is lent again";
  EXPECT_EQ(logits(), quantized) << "the region holds the Q4_0 weights again, bit for bit";

  // And the layer can still go home once the file is back.
  store.fail = false;
  ASSERT_TRUE(swapper.start(1, DType::F16, kv));
  done = settle();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].error, "");
  EXPECT_EQ(logits(), full);
}

}  // namespace
}  // namespace morphserve
