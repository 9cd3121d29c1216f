#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/run_command.h"
#include "morph/morph_order.h"
#include "test_data.h"

namespace morphserve {
namespace {

namespace fs = std::filesystem;
using ::morphserve::testing::run_morphserve;

class ProfileCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("morphserve_profile_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string write_text(const std::string& name, const std::string& text) const {
    std::ofstream(path(name)) << text;
    return path(name);
  }

  fs::path dir_;
};

TEST_F(ProfileCommand, WritesTheOrderOfStories260K) {
  MORPHSERVE_REQUIRE_DATA(model_path, "models/stories260K.gguf");
  MORPHSERVE_REQUIRE_DATA(text_path, "text/tinystories_val.txt");
  const std::string out = path("stories.morph.json");
  const auto r = run_morphserve("profile -m " + model_path.string() + " --calib " + text_path.string() +
                                " --ctx 64 --max-tokens 256 --skip-tokens 1000 -o " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("LTS"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("order (swap first -> last): "), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("profile ["), std::string::npos) << "no progress bar: " << r.err;
  const std::vector<int> order = load_morph_order(out, 5);
  EXPECT_EQ(order.size(), 5u);

  std::ifstream in(out);
  const auto doc = nlohmann::json::parse(in);
  EXPECT_EQ(doc["n_layers"], 5);
  EXPECT_EQ(doc["calibration"]["tokens"], 256);
  EXPECT_EQ(doc["calibration"]["ctx"], 64);
  EXPECT_EQ(doc["calibration"]["skip_tokens"], 1000);
  EXPECT_EQ(doc["calibration"]["file"], text_path.string());
  EXPECT_EQ(doc["model"], model_path.string());
  ASSERT_EQ(doc["layers"].size(), 5u);
  for (const auto& layer : doc["layers"]) {
    EXPECT_GT(layer["lrs"].get<double>(), 0.9);
    EXPECT_LE(layer["lrs"].get<double>(), 1.0);
  }
  // The printed order is the written one.
  std::string printed;
  for (int l : order) {
    if (!printed.empty()) printed += ' ';
    printed += std::to_string(l);
  }
  EXPECT_NE(r.out.find("order (swap first -> last): " + printed), std::string::npos) << r.out;
}

TEST_F(ProfileCommand, ProfilesADummyModelWithNoSharedData) {
  std::string text;
  for (int i = 0; i < 20; ++i) text += "The quick brown fox jumps over the lazy dog. ";
  const std::string calib = write_text("calib.txt", text);
  const std::string out = path("tiny.morph.json");
  const auto r = run_morphserve("profile -m dummy:tiny --calib " + calib + " --ctx 32 --max-tokens 64 -t 2 -o " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(load_morph_order(out, 4).size(), 4u);
}

TEST_F(ProfileCommand, BadInputGetsAClearError) {
  const std::string calib = write_text("short.txt", "Too short.");
  auto r = run_morphserve("profile -m dummy:tiny --calib " + calib + " -o " + path("o.json"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("fewer than one window"), std::string::npos) << r.err;
  r = run_morphserve("profile -m dummy:tiny --calib " + calib + " --skip-tokens 100000 -o " + path("o.json"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("skips all"), std::string::npos) << r.err;
  r = run_morphserve("profile -m dummy:tiny --calib " + path("missing.txt") + " -o " + path("o.json"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("missing.txt"), std::string::npos) << r.err;
  r = run_morphserve("profile -m dummy:tiny -o " + path("o.json"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--calib"), std::string::npos) << r.err;

  std::string text;
  for (int i = 0; i < 20; ++i) text += "The quick brown fox jumps over the lazy dog. ";
  const std::string long_calib = write_text("calib.txt", text);
  r = run_morphserve("profile -m dummy:tiny --calib " + long_calib + " --ctx 32 --max-tokens 64 -o " +
                     path("no/such/dir/o.json"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot write"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(path("o.json")));
}

}  // namespace
}  // namespace morphserve
