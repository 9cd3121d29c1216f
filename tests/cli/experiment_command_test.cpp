// A short smoke version of the experiments (seconds, not minutes): the real binary starts a fresh
// server per arm, replays a small workload, and writes the comparison table, the stacked timeline
// and every arm's run. It checks the table's structure, not its numbers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/run_command.h"
#include "test_data.h"

namespace morphserve::testing {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

std::string read(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// The rows of the markdown table: lines starting with "| " after the header and its rule.
std::vector<std::string> table_rows(const std::string& text) {
  std::vector<std::string> rows;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("| ", 0) == 0 && line.find("---") == std::string::npos) rows.push_back(line);
  }
  return rows;
}

void expect_arm_outputs(const fs::path& out, const std::vector<std::string>& arms) {
  for (const std::string& arm : arms) {
    ASSERT_TRUE(fs::exists(out / (arm + ".json"))) << arm;
    const nlohmann::json run = nlohmann::json::parse(read(out / (arm + ".json")));
    EXPECT_FALSE(run["records"].empty()) << arm;
    EXPECT_TRUE(fs::exists(out / (arm + ".server.log"))) << arm;
  }
  const std::string svg = read(out / "timeline.svg");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  for (const std::string& arm : arms) EXPECT_THAT(svg, HasSubstr(arm));
}

TEST(ExperimentCommand, PressureSmokeComparesEveryArm) {
  const fs::path dir = fresh_dir("experiment_pressure_smoke");
  const fs::path config = dir / "smoke.json";
  std::ofstream(config) << R"({
    "name": "smoke", "description": "smoke test",
    "model": "dummy:tiny",
    "serve": ["--memory-budget", "3MiB", "--max-model-len", "128", "--max-num-batched-tokens", "64"],
    "workload": {"synthetic": "synthetic:rate=20,requests=30,prompt=8-24,output=8-24,seed=3"},
    "bench": {"slo_ttft": "1s", "vocab_size": 512},
    "arms": [{"name": "off", "serve": ["--morph", "off"]},
             {"name": "static-w4", "serve": ["--morph", "static-w4"]},
             {"name": "dynamic", "serve": ["--morph", "dynamic", "--mode", "performance"]}]
  })";
  const CommandResult r = run_morphserve("experiment " + config.string() + " --out " + (dir / "out").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string table = read(dir / "out" / "comparison.md");
  EXPECT_THAT(table, HasSubstr("SLO violations"));
  EXPECT_THAT(table, HasSubstr("P95 TTFT"));
  EXPECT_THAT(table, HasSubstr("goodput"));
  const auto rows = table_rows(table);
  ASSERT_EQ(rows.size(), 4u) << table;  // the header and one row per arm
  EXPECT_THAT(rows[1], HasSubstr("off"));
  EXPECT_THAT(rows[2], HasSubstr("static-w4"));
  EXPECT_THAT(rows[3], HasSubstr("dynamic"));
  EXPECT_THAT(r.out, HasSubstr("| dynamic"));
  expect_arm_outputs(dir / "out", {"off", "static-w4", "dynamic"});
}

TEST(ExperimentCommand, QualitySmokeAddsTheQualityColumns) {
  MORPHSERVE_REQUIRE_DATA(model, "models/stories260K.gguf");
  MORPHSERVE_REQUIRE_DATA(text, "text/tinystories_val.txt");
  const fs::path dir = fresh_dir("experiment_quality_smoke");
  const fs::path config = dir / "quality.json";
  std::ofstream(config) << nlohmann::json{
      {"name", "quality-smoke"},
      {"model", model.string()},
      {"serve", {"--max-model-len", "128", "--max-num-batched-tokens", "64", "--replicas", (dir / "r.gguf").string()}},
      {"workload", {{"synthetic", "synthetic:rate=20,requests=12,prompt=8-16,output=16,seed=5"}}},
      {"bench", {{"slo_ttft", "1s"}, {"prompt_text", text.string()}}},
      {"arms", {{{"name", "fp32"}, {"serve", {"--morph", "off"}}}, {{"name", "w4"}, {"serve", {"--morph", "static-w4"}}}}},
      {"quality", {{"reference_arm", "fp32"}, {"text", text.string()}, {"ppl_ctx", 128}, {"ppl_tokens", 1024}}}}.dump();
  const CommandResult r = run_morphserve("experiment " + config.string() + " --out " + (dir / "out").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string table = read(dir / "out" / "comparison.md");
  EXPECT_THAT(table, HasSubstr("tokens equal to FP greedy"));
  EXPECT_THAT(table, HasSubstr("ppl of states"));
  const auto rows = table_rows(table);
  ASSERT_EQ(rows.size(), 3u) << table;
  // The full-precision arm agrees with its own sequential replay (greedy, F32 arithmetic).
  EXPECT_THAT(rows[1], HasSubstr("100.0%")) << table;
  EXPECT_TRUE(fs::exists(dir / "out" / "reference.json"));
  expect_arm_outputs(dir / "out", {"fp32", "w4"});
}

TEST(ExperimentCommand, BadConfigsAreRefusedWithTheirProblem) {
  const fs::path dir = fresh_dir("experiment_bad");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{", "not valid JSON"},
      {R"({"name":"x","model":"dummy:tiny","workload":{"synthetic":"synthetic:rate=1,requests=1"},"arms":[]})", "arms"},
      {R"({"name":"x","model":"dummy:tiny","workload":{},"arms":[{"name":"a"}]})", "exactly one of"},
      {R"({"name":"x","model":"dummy:tiny","workload":{"synthetic":"synthetic:rate=1,requests=1"},"arms":[{"name":"a"}],"colour":1})", "unknown field"},
      {R"({"name":"x","model":"dummy:tiny","workload":{"synthetic":"synthetic:rate=1,requests=1"},"arms":[{"name":"a"},{"name":"a"}]})", "two arms"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const fs::path config = dir / ("bad" + std::to_string(i) + ".json");
    std::ofstream(config) << cases[i].first;
    const CommandResult r = run_morphserve("experiment " + config.string() + " --out " + (dir / "out").string());
    EXPECT_NE(r.exit_code, 0) << cases[i].first;
    EXPECT_THAT(r.err, HasSubstr(cases[i].second)) << cases[i].first;
  }
}

}  // namespace
}  // namespace morphserve::testing
