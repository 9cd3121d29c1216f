#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/run_command.h"
#include "test_data.h"

namespace morphserve {
namespace {

using ::morphserve::testing::run_morphserve;

TEST(GenerateCommand, RunsTheBuiltInModelWithNoArguments) {
  const auto r = run_morphserve("generate -n 8 --stats");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("decode:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("tok/s"), std::string::npos) << r.err;
}

TEST(GenerateCommand, StreamsTheGreedyStoryOfStories260K) {
  MORPHSERVE_REQUIRE_DATA(model_path, "models/stories260K.gguf");
  MORPHSERVE_REQUIRE_DATA(ref_path, "models/reference/stories260K.greedy.json");
  std::ifstream in(ref_path);
  const auto ref = nlohmann::json::parse(in);
  const auto& c = ref["cases"][1];
  const std::string prompt = c["prompt"];
  const std::string text = c["text"];
  const auto r = run_morphserve("generate -m " + model_path.string() + " -p '" + prompt + "' -n " +
                                std::to_string(c["generated_ids"].size()) + " --ignore-eos");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(text.substr(0, prompt.size()), prompt);
  EXPECT_EQ(r.out, text.substr(prompt.size()) + "\n");
}

TEST(GenerateCommand, ImpossibleParametersGetAClearError) {
  auto r = run_morphserve("generate -n 100000");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("context"), std::string::npos) << r.err;
  r = run_morphserve("generate --temp -1 -n 4");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("temperature"), std::string::npos) << r.err;
  r = run_morphserve("generate --precision 0-99:w4 -n 4");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("layer 99 does not exist"), std::string::npos) << r.err;
  r = run_morphserve("generate -m dummy:huge -n 4");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown dummy model shape"), std::string::npos) << r.err;
  r = run_morphserve("generate -m /nonexistent/model.gguf -n 4");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot open"), std::string::npos) << r.err;
}

TEST(PplCommand, PrintsPerplexityForEachPrecision) {
  MORPHSERVE_REQUIRE_DATA(model_path, "models/stories260K.gguf");
  MORPHSERVE_REQUIRE_DATA(text_path, "text/tinystories_val.txt");
  const auto r = run_morphserve("ppl -m " + model_path.string() + " --text " + text_path.string() +
                                " --ctx 256 --max-tokens 2048 --precision 0-2:w4,3:w8");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("perplexity: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("8 windows of 256 tokens"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("perplexity ["), std::string::npos) << "no progress bar: " << r.err;
}

}  // namespace
}  // namespace morphserve
