// `morphserve quantize` as a user runs it: writes a replica file that the store opens, and refuses
// what it cannot quantize with one clear line.
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "cli/run_command.h"
#include "kernels/thread_pool.h"
#include "model/dummy_model.h"
#include "model/gguf_file.h"
#include "model/gguf_test_support.h"
#include "morph/llama_gguf_fixture.h"
#include "morph/replica_store.h"
#include "test_data.h"
#include "test_backend.h"

namespace morphserve {
namespace {

using ::morphserve::testing::run_morphserve;
using ::morphserve::testing::TempDir;

TEST(QuantizeCommand, WritesAReplicaFileTheStoreOpens) {
  TempDir dir;
  const std::string model = dir.file("model.gguf");
  const std::string out = dir.file("out.replicas.gguf");
  ::morphserve::testing::write_llama_gguf(make_dummy_model("tiny", DType::F16, test_backend()), model);
  const auto r = run_morphserve("quantize -m " + model + " -o " + out + " -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("wrote " + out), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("MiB"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("f16 q8_0 q4_0"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("quantize ["), std::string::npos) << "no progress bar: " << r.err;
  ThreadPool pool(1);
  const auto store = ReplicaStore::open(model, out, false, pool);
  EXPECT_EQ(store->n_layers(), 4);
}

TEST(QuantizeCommand, DefaultsToTheFileBesideTheModel) {
  TempDir dir;
  const std::string model = dir.file("model.gguf");
  ::morphserve::testing::write_llama_gguf(make_dummy_model("tiny", DType::F32, test_backend()), model);
  const auto r = run_morphserve("quantize -m " + model);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::exists(dir.file("model.replicas.gguf"))) << r.out;
  EXPECT_EQ(GgufFile::open(dir.file("model.replicas.gguf")).get_string("general.architecture"), "morphserve.replicas");
}

TEST(QuantizeCommand, QuantizesStories260K) {
  MORPHSERVE_REQUIRE_DATA(model, "models/stories260K.gguf");
  TempDir dir;
  const std::string out = dir.file("stories.replicas.gguf");
  const auto r = run_morphserve("quantize -m " + model.string() + " -o " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("f32 q8_0 q4_0"), std::string::npos) << r.out;
  ThreadPool pool(1);
  EXPECT_EQ(ReplicaStore::open(model.string(), out, false, pool)->n_layers(), 5);
}

TEST(QuantizeCommand, RefusesWhatItCannotQuantize) {
  TempDir dir;
  auto r = run_morphserve("quantize -m dummy:tiny");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("morphserve: error: dummy:tiny is a dummy model"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("built in memory"), std::string::npos) << r.err;

  const std::string missing = dir.file("absent.gguf");
  r = run_morphserve("quantize -m " + missing);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot open " + missing), std::string::npos) << r.err;

  const std::string model = dir.file("model.gguf");
  ::morphserve::testing::write_llama_gguf(make_dummy_model("tiny", DType::F16, test_backend()), model);
  r = run_morphserve("quantize -m " + model + " -o " + dir.file("missing-folder/out.gguf"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot write the replica file " + dir.file("missing-folder/out.gguf")), std::string::npos)
      << r.err;
  r = run_morphserve("quantize -m " + model + " -o " + model);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("is the model file itself"), std::string::npos) << r.err;
  EXPECT_EQ(GgufFile::open(model).get_string("general.architecture"), "llama");
  r = run_morphserve("quantize");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--model is required"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace morphserve
