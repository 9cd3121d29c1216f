// `morphserve bench` as a user runs it: against a real `morphserve serve` on a free port.
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bench/report.h"
#include "bench/fake_openai_server.h"
#include "cli/run_command.h"
#include "server/server_process.h"
#include "test_data.h"

namespace morphserve {
namespace {

namespace fs = std::filesystem;
using ::morphserve::testing::closed_port;
using ::morphserve::testing::run_morphserve;
using ::morphserve::testing::ServerProcess;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class BenchCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("morphserve_bench_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  static std::string url_of(const ServerProcess& server) { return "http://127.0.0.1:" + std::to_string(server.port()); }

  // Runs bench with the output files added, checks it succeeded without a failed request, and
  // returns the run file.
  nlohmann::json bench_ok(const std::string& args) {
    const std::string out = path("run.json"), plot = path("run.svg");
    fs::remove(out);
    fs::remove(plot);
    const auto r = run_morphserve("bench " + args + " --out " + out + " --plot " + plot);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("bench ["), std::string::npos) << "no progress bar: " << r.err;
    EXPECT_FALSE(r.out.empty()) << "no summary table";
    const std::string svg = read_file(plot);
    EXPECT_NE(svg.find("<svg"), std::string::npos) << "no SVG written";
    EXPECT_NE(svg.find("</svg>"), std::string::npos);
    const auto run = nlohmann::json::parse(read_file(out), nullptr, false);
    EXPECT_FALSE(run.is_discarded()) << "the run file is not JSON";
    if (run.is_discarded()) return {};
    EXPECT_EQ(run["format"], bench::kRunFormat);
    EXPECT_EQ(run["summary"]["errors"], 0) << r.err;
    EXPECT_GT(run["records"].size(), 0u);
    EXPECT_EQ(run["summary"]["completed"], run["records"].size());
    for (const auto& record : run["records"]) {
      EXPECT_EQ(record["error"], "") << record.dump();
      EXPECT_EQ(record["http_status"], 200);
      EXPECT_GT(record["output_tokens"], 0);
      EXPECT_FALSE(record["first_token_seconds"].is_null());
    }
    EXPECT_NO_THROW(bench::run_from_json(run));
    return run;
  }

  fs::path dir_;
};

const char* const kSynthetic = " --synthetic rate=3,duration=5,prompt=16-48,output=4-8,seed=1 --vocab-size 512"
                               " --slo-ttft 2s --sample-interval 500ms";

TEST_F(BenchCommand, ReplaysASyntheticWorkloadAgainstMorphserve) {
  ServerProcess server({"-m", "dummy:tiny"});
  ASSERT_TRUE(server.wait_ready());
  const auto run = bench_ok("--url " + url_of(server) + kSynthetic);
  EXPECT_EQ(run["model"], "dummy:tiny");
  EXPECT_NE(run["workload"]["source"].get<std::string>().find("synthetic"), std::string::npos);
  ASSERT_GT(run["samples"].size(), 2u) << "the server's /metrics were not sampled";
  EXPECT_GT(run["samples"][0]["values"]["kv_blocks_total"].get<double>(), 0);
  for (const auto& record : run["records"]) {
    EXPECT_GE(record["prompt_tokens"], 16);
    EXPECT_LE(record["prompt_tokens"], 48);
    EXPECT_EQ(record["output_tokens"], record["max_tokens"]);  // ignore_eos: exactly the asked length
  }
}

TEST_F(BenchCommand, ReplaysAWindowOfTheAzureCodeTrace) {
  MORPHSERVE_REQUIRE_DATA(trace, "traces/azure-llm-2023/AzureLLMInferenceTrace_code.csv");
  MORPHSERVE_REQUIRE_DATA(text, "text/tinystories_val.txt");
  ServerProcess server({"-m", "dummy:tiny"});
  ASSERT_TRUE(server.wait_ready());
  const auto run = bench_ok("--url " + url_of(server) + " --trace " + trace.string() +
                            " --window 0:5 --max-prompt 64 --max-output 16 --slo-ttft 2s --prompt-text " +
                            text.string());
  EXPECT_EQ(run["settings"]["window"], "0:5");
  EXPECT_NE(run["settings"]["prompts"].get<std::string>().find("tokenized by the server"), std::string::npos);
  EXPECT_GE(run["records"].size(), 5u);
  for (const auto& record : run["records"]) {
    EXPECT_LE(record["prompt_tokens"], 64);
    EXPECT_LE(record["max_tokens"], 16);
    EXPECT_LT(record["scheduled_seconds"], 5.0);
  }
}

TEST_F(BenchCommand, WorksAgainstAnotherServerInstanceWithMorphingOff) {
  ServerProcess server({"-m", "dummy:tiny", "--morph", "off"});
  ASSERT_TRUE(server.wait_ready());
  const auto run = bench_ok("--url " + url_of(server) + kSynthetic);
  for (const auto& sample : run["samples"]) {
    EXPECT_EQ(sample["values"].value("layers_quantized_w4", 0.0), 0.0);
  }
}

TEST_F(BenchCommand, TextPromptsForServersThatTakeOnlyStrings) {
  ServerProcess server({"-m", "dummy:tiny", "--morph", "off"});
  ASSERT_TRUE(server.wait_ready());
  const auto run = bench_ok("--url " + url_of(server) +
                            " --synthetic rate=4,requests=6,prompt=32,output=4 --prompt-format text --sample-interval 0");
  EXPECT_NE(run["settings"]["prompts"].get<std::string>().find("detokenized"), std::string::npos);
  for (const auto& record : run["records"]) {
    // The server's own count of the detokenized text: close to the asked length.
    EXPECT_GE(record["prompt_tokens"], 16);
    EXPECT_LE(record["prompt_tokens"], 64);
  }
}

// dummy:tiny has 512 tokens: without --vocab-size, bench asks the server instead of sending ids
// up to 32000 and failing its preflight.
TEST_F(BenchCommand, WithoutVocabSizeTheServersVocabularyIsUsed) {
  ServerProcess server({"-m", "dummy:tiny", "--morph", "off"});
  ASSERT_TRUE(server.wait_ready());
  const auto r = run_morphserve("bench --url " + url_of(server) +
                                " --synthetic rate=4,requests=4,prompt=16,output=2,seed=3 --sample-interval 0");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("prompt ids below 512 (vocab_size 512 from GET /v1/models)"), std::string::npos) << r.err;
}

TEST_F(BenchCommand, AnUnreachableServerFailsAtStartWithAClearMessage) {
  const int port = closed_port();
  const auto r = run_morphserve("bench --url http://127.0.0.1:" + std::to_string(port) +
                                " --synthetic rate=1,requests=2");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot reach"), std::string::npos) << r.err;
}

TEST_F(BenchCommand, BadFlagsFailBeforeContactingTheServer) {
  const auto both = run_morphserve("bench --url http://127.0.0.1:1 --synthetic requests=2 --trace x.csv");
  EXPECT_NE(both.exit_code, 0);
  const auto neither = run_morphserve("bench --url http://127.0.0.1:1");
  EXPECT_EQ(neither.exit_code, 1);
  EXPECT_NE(neither.err.find("exactly one of --trace FILE and --synthetic SPEC"), std::string::npos) << neither.err;
  const auto bad_spec = run_morphserve("bench --url http://127.0.0.1:1 --synthetic rate=fast,requests=2");
  EXPECT_EQ(bad_spec.exit_code, 1);
  EXPECT_NE(bad_spec.err.find("rate"), std::string::npos) << bad_spec.err;
  const auto bad_url = run_morphserve("bench --url ftp://host --synthetic requests=2");
  EXPECT_EQ(bad_url.exit_code, 1);
  EXPECT_NE(bad_url.err.find("--url"), std::string::npos) << bad_url.err;
}

}  // namespace
}  // namespace morphserve
