#include "morph/morph_order.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "core/error.h"

namespace morphserve {
namespace {

namespace fs = std::filesystem;

class MorphOrderFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("morph_order_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const fs::path path = dir_ / name;
    std::ofstream(path) << text;
    return path.string();
  }
  // The message of the InvalidArgument that loading `text` raises ("" when none does).
  std::string load_error(const std::string& text, int n_layers) {
    const std::string path = write("bad.json", text);
    try {
      load_morph_order(path, n_layers);
    } catch (const InvalidArgument& e) {
      return e.what();
    }
    return "";
  }

  fs::path dir_;
};

ImportanceProfile sample_profile() {
  ImportanceProfile p;
  p.order = {2, 0, 1};
  p.n_tokens = 1024;
  p.n_windows = 8;
  p.ctx = 128;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  p.mds_steps = {{0.91, 0.92, 0.99}, {0.95, 0.93, nan}, {nan, 0.97, nan}};
  p.layers = {{0, 0.5, 0.98, 0.95, 0.845, 1}, {1, 0.25, 0.97, 0.97, 0.79, 2}, {2, 0.875, 0.999, 0.99, 0.9635, 0}};
  return p;
}

TEST(MorphOrder, FrontToBackIsEveryLayerInTurn) {
  EXPECT_EQ(front_to_back_order(4), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_TRUE(front_to_back_order(0).empty());
}

TEST_F(MorphOrderFileTest, RoundTripsEveryField) {
  const ImportanceProfile p = sample_profile();
  const std::string path = (dir_ / "model.morph.json").string();
  write_morph_order(path, p, CalibrationInfo{"models/m.gguf", "text/val.txt", 65536});
  EXPECT_FALSE(fs::exists(path + ".tmp"));

  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const MorphOrderFile back = parse_morph_order(text, path);
  EXPECT_EQ(back.info.model, "models/m.gguf");
  EXPECT_EQ(back.info.file, "text/val.txt");
  EXPECT_EQ(back.info.skip_tokens, 65536);
  const ImportanceProfile& q = back.profile;
  EXPECT_EQ(q.order, p.order);
  EXPECT_EQ(q.n_tokens, 1024);
  EXPECT_EQ(q.n_windows, 8);
  EXPECT_EQ(q.ctx, 128);
  ASSERT_EQ(q.layers.size(), 3u);
  for (size_t l = 0; l < 3; ++l) {
    EXPECT_EQ(q.layers[l].layer, p.layers[l].layer);
    EXPECT_EQ(q.layers[l].lts, p.layers[l].lts);
    EXPECT_EQ(q.layers[l].lrs, p.layers[l].lrs);
    EXPECT_EQ(q.layers[l].mds, p.layers[l].mds);
    EXPECT_EQ(q.layers[l].lis, p.layers[l].lis);
    EXPECT_EQ(q.layers[l].rank, p.layers[l].rank);
  }
  ASSERT_EQ(q.mds_steps.size(), 3u);
  for (size_t s = 0; s < 3; ++s) {
    ASSERT_EQ(q.mds_steps[s].size(), 3u);
    for (size_t j = 0; j < 3; ++j) {
      if (std::isnan(p.mds_steps[s][j])) {
        EXPECT_TRUE(std::isnan(q.mds_steps[s][j]));
      } else {
        EXPECT_EQ(q.mds_steps[s][j], p.mds_steps[s][j]);
      }
    }
  }
  EXPECT_EQ(load_morph_order(path, 3), (std::vector<int>{2, 0, 1}));
}

TEST_F(MorphOrderFileTest, AcceptsAHandWrittenOrder) {
  const std::string path = write("hand.json", R"({"n_layers": 4, "order": [3, 1, 0, 2]})");
  EXPECT_EQ(load_morph_order(path, 4), (std::vector<int>{3, 1, 0, 2}));
  const MorphOrderFile f = parse_morph_order(R"({"n_layers": 4, "order": [3, 1, 0, 2]})", "hand");
  EXPECT_EQ(f.profile.layers[3].rank, 0);
  EXPECT_EQ(f.profile.layers[2].rank, 3);
}

TEST_F(MorphOrderFileTest, RejectsOrdersThatAreNotAPermutation) {
  std::string e = load_error(R"({"n_layers": 3, "order": [0, 1, 1]})", 3);
  EXPECT_NE(e.find("bad.json"), std::string::npos) << e;
  EXPECT_NE(e.find("layer 1 twice"), std::string::npos) << e;
  e = load_error(R"({"n_layers": 3, "order": [0, 1, 3]})", 3);
  EXPECT_NE(e.find("layer 3, outside"), std::string::npos) << e;
  e = load_error(R"({"n_layers": 3, "order": [0, -1, 2]})", 3);
  EXPECT_NE(e.find("layer -1, outside"), std::string::npos) << e;
  e = load_error(R"({"n_layers": 3, "order": [0, 1]})", 3);
  EXPECT_NE(e.find("lists 2 layers"), std::string::npos) << e;
  e = load_error(R"({"n_layers": 3, "order": [0, 1, "2"]})", 3);
  EXPECT_NE(e.find("must be an integer"), std::string::npos) << e;
  e = load_error(R"({"n_layers": 3, "order": [0, 1.5, 2]})", 3);
  EXPECT_NE(e.find("must be an integer"), std::string::npos) << e;
  e = load_error(R"({"n_layers": 3, "order": {"0": 1}})", 3);
  EXPECT_NE(e.find("must be an array"), std::string::npos) << e;
}

TEST_F(MorphOrderFileTest, RejectsAnOrderForAnotherModel) {
  const std::string e = load_error(R"({"n_layers": 3, "order": [2, 1, 0]})", 5);
  EXPECT_NE(e.find("bad.json"), std::string::npos) << e;
  EXPECT_NE(e.find("3 layers"), std::string::npos) << e;
  EXPECT_NE(e.find("this model has 5"), std::string::npos) << e;
}

TEST_F(MorphOrderFileTest, RejectsFilesThatAreNotOrderFiles) {
  std::string e = load_error("layers: 0 1 2", 3);
  EXPECT_NE(e.find("bad.json"), std::string::npos) << e;
  EXPECT_NE(e.find("invalid JSON"), std::string::npos) << e;
  e = load_error("", 3);
  EXPECT_NE(e.find("invalid JSON"), std::string::npos) << e;
  e = load_error("[0, 1, 2]", 3);
  EXPECT_NE(e.find("expected a JSON object"), std::string::npos) << e;
  e = load_error(R"({"order": [0, 1, 2]})", 3);
  EXPECT_NE(e.find("no \"n_layers\""), std::string::npos) << e;
  e = load_error(R"({"n_layers": 3})", 3);
  EXPECT_NE(e.find("no \"order\""), std::string::npos) << e;
  e = load_error(R"({"n_layers": 0, "order": []})", 0);
  EXPECT_NE(e.find("at least 1"), std::string::npos) << e;
  e = load_error(R"({"n_layers": 2, "order": [1, 0], "layers": [{"layer": 0, "lts": 0.5}]})", 2);
  EXPECT_NE(e.find("no \"lrs\""), std::string::npos) << e;
  e = load_error(R"({"n_layers": 2, "order": [1, 0], "layers": [{"layer": 0, "lts": "x", "lrs": 1, "mds": 1, "lis": 1}]})", 2);
  EXPECT_NE(e.find("\"lts\" must be a number"), std::string::npos) << e;

  const std::string missing = (dir_ / "missing.json").string();
  try {
    load_morph_order(missing, 3);
    ADD_FAILURE() << "a missing file was accepted";
  } catch (const InvalidArgument& err) {
    EXPECT_NE(std::string(err.what()).find("missing.json"), std::string::npos) << err.what();
  }
}

TEST_F(MorphOrderFileTest, WritingToAMissingFolderFailsClearly) {
  const std::string path = (dir_ / "no" / "such" / "dir" / "o.json").string();
  EXPECT_THROW(write_morph_order(path, sample_profile(), {}), InvalidArgument);
}

}  // namespace
}  // namespace morphserve
