#include "bench/report.h"

#include <cmath>

#include <gtest/gtest.h>

#include "core/error.h"

namespace morphserve::bench {
namespace {

BenchRun sample_run() {
  BenchRun run;
  run.url = "http://127.0.0.1:8080";
  run.model = "tiny";
  run.workload.source = "azure:trace.csv | window=0:72";
  run.workload.requests = {{0.0, 100, 8}, {0.25, 2000, 16}};
  RequestRecord a;
  a.index = 0;
  a.scheduled_seconds = 0.0;
  a.send_seconds = 0.001;
  a.first_token_seconds = 0.1234567890123;
  a.token_seconds = {0.1234567890123, 0.2, 0.31};
  a.end_seconds = 0.31;
  a.prompt_tokens = 100;
  a.max_tokens = 8;
  a.output_tokens = 3;
  a.http_status = 200;
  RequestRecord b;
  b.index = 1;
  b.scheduled_seconds = 0.25;
  b.send_seconds = 0.26;
  b.end_seconds = 1.5;
  b.prompt_tokens = 2000;
  b.max_tokens = 16;
  b.http_status = 503;
  b.error = "HTTP 503: \"overloaded\"";
  run.records = {a, b};
  run.samples.resize(2);
  run.samples[0].seconds = 0.5;
  run.samples[0].values = {{"kv_blocks_total", 512}, {"layers_quantized_w4", 2}};
  run.samples[0].precision_map = "0:q4_0,3:q4_0";
  run.samples[1].seconds = 1.0;
  run.samples[1].values = {{"num_requests_running", 1}};
  run.duration_seconds = 1.499;
  run.settings = {{"slo-ttft", "2s"}, {"rate-scale", "0.2"}};
  return run;
}

TEST(Report, RunRoundTripsThroughJsonText) {
  const BenchRun run = sample_run();
  const Slo slo{2.0, 0.1};
  const nlohmann::json j = to_json(run, summarize(run, slo), slo);
  const BenchRun back = run_from_json(nlohmann::json::parse(j.dump()));
  EXPECT_EQ(back.url, run.url);
  EXPECT_EQ(back.model, run.model);
  EXPECT_EQ(back.duration_seconds, run.duration_seconds);
  EXPECT_EQ(back.settings, run.settings);
  EXPECT_EQ(back.workload.source, run.workload.source);
  ASSERT_EQ(back.workload.requests.size(), 2u);
  EXPECT_EQ(back.workload.requests[1].arrival_seconds, 0.25);
  EXPECT_EQ(back.workload.requests[1].prompt_tokens, 2000);
  ASSERT_EQ(back.records.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const RequestRecord &x = run.records[i], &y = back.records[i];
    EXPECT_EQ(x.index, y.index);
    EXPECT_EQ(x.scheduled_seconds, y.scheduled_seconds);
    EXPECT_EQ(x.send_seconds, y.send_seconds);
    EXPECT_EQ(x.first_token_seconds, y.first_token_seconds);  // exact: doubles print round-trippable
    EXPECT_EQ(x.token_seconds, y.token_seconds);
    EXPECT_EQ(x.end_seconds, y.end_seconds);
    EXPECT_EQ(x.prompt_tokens, y.prompt_tokens);
    EXPECT_EQ(x.max_tokens, y.max_tokens);
    EXPECT_EQ(x.output_tokens, y.output_tokens);
    EXPECT_EQ(x.http_status, y.http_status);
    EXPECT_EQ(x.error, y.error);
  }
  ASSERT_EQ(back.samples.size(), 2u);
  EXPECT_EQ(back.samples[0].values, run.samples[0].values);
  EXPECT_EQ(back.samples[0].precision_map, "0:q4_0,3:q4_0");
  EXPECT_EQ(back.samples[1].precision_map, "");
  EXPECT_EQ(back.samples[1].seconds, 1.0);
  const Slo slo_back = slo_from_json(j);
  EXPECT_EQ(slo_back.ttft, 2.0);
  EXPECT_EQ(slo_back.tpot, 0.1);
  // The summary is there for readers, with NaN as null.
  EXPECT_EQ(j["summary"]["requests"], 2);
  EXPECT_TRUE(j["summary"]["layer_swaps_up"].is_null());
  EXPECT_EQ(j["format"], kRunFormat);
}

TEST(Report, RejectsRunsItCannotRead) {
  const BenchRun run = sample_run();
  const nlohmann::json good = to_json(run, summarize(run, {}), {});
  EXPECT_THROW(run_from_json(nlohmann::json::array()), InvalidArgument);
  auto broken = [&](auto edit) {
    nlohmann::json j = good;
    edit(j);
    try {
      run_from_json(j);
    } catch (const InvalidArgument& e) {
      return std::string(e.what());
    }
    return std::string("parsed");
  };
  EXPECT_NE(broken([](auto& j) { j["format"] = "other"; }).find("format"), std::string::npos);
  EXPECT_NE(broken([](auto& j) { j.erase("records"); }).find("run.records is missing"), std::string::npos);
  EXPECT_NE(broken([](auto& j) { j["records"][1]["send_seconds"] = "soon"; }).find("run.records[1].send_seconds"),
            std::string::npos);
  EXPECT_NE(broken([](auto& j) { j["records"][0]["output_tokens"] = 2.5; }).find("output_tokens"), std::string::npos);
  EXPECT_NE(broken([](auto& j) { j["version"] = 99; }).find("newer"), std::string::npos);
  EXPECT_NE(broken([](auto& j) { j["samples"][0]["values"] = 3; }).find("values"), std::string::npos);
}

TEST(Report, SummaryTableShowsMillisecondsAndRates) {
  const BenchRun run = sample_run();
  const Slo slo{2.0, 0};
  const std::string table = summary_table(summarize(run, slo), slo);
  EXPECT_NE(table.find("2 sent, 1 completed, 1 failed"), std::string::npos) << table;
  EXPECT_NE(table.find("TTFT <= 2000.0 ms"), std::string::npos) << table;
  EXPECT_NE(table.find("50.0 %"), std::string::npos) << table;
  EXPECT_NE(table.find("TTFT"), std::string::npos);
  EXPECT_NE(table.find("122.5"), std::string::npos) << table;  // TTFT 0.12346 - 0.001 s
  EXPECT_NE(table.find("P99"), std::string::npos);
  EXPECT_NE(table.find("E2E"), std::string::npos);
}

TEST(Report, ComparisonTableHasOneMarkdownRowPerArm) {
  BenchSummary off, dynamic;
  off.slo_violation_rate = 0.25;
  off.ttft.p95 = 3.2;
  off.tpot.p99 = 0.05;
  off.throughput_rps = 3;
  off.goodput_rps = 2.25;
  off.mean_layers_quantized = NAN;
  dynamic = off;
  dynamic.slo_violation_rate = 0.02;
  dynamic.mean_layers_quantized = 3.5;
  const std::string table = comparison_table({{"off", off}, {"dyn|amic", dynamic}}, Slo{2.0, 0.1},
                                             {{"perplexity", {"5.01", "5.12"}}, {"notes", {"baseline"}}});
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl; (nl = table.find('\n', start)) != std::string::npos; start = nl + 1) lines.push_back(table.substr(start, nl - start));
  ASSERT_EQ(lines.size(), 6u) << table;  // SLO line, blank, header, rule, two arms
  EXPECT_NE(lines[0].find("TTFT <= 2000.0 ms, TPOT <= 100.0 ms"), std::string::npos);
  for (const char* column : {"| arm", "SLO violations", "P95 TTFT", "P99 TPOT", "throughput", "goodput",
                             "mean layers quantized", "perplexity", "notes |"})
    EXPECT_NE(lines[2].find(column), std::string::npos) << column;
  EXPECT_EQ(lines[3].rfind("| --", 0), 0u);
  EXPECT_NE(lines[4].find("25.0 %"), std::string::npos) << lines[4];
  EXPECT_NE(lines[4].find("3200.0 ms"), std::string::npos);
  EXPECT_NE(lines[4].find("baseline"), std::string::npos);
  EXPECT_NE(lines[5].find("dyn\\|amic"), std::string::npos);
  EXPECT_NE(lines[5].find("3.50"), std::string::npos);
  EXPECT_NE(lines[5].find("5.12"), std::string::npos);
  // Every row has the same number of cells.
  auto pipes = [](const std::string& s) {
    size_t n = 0;
    for (size_t i = 0; i < s.size(); ++i) n += s[i] == '|' && (i == 0 || s[i - 1] != '\\');
    return n;
  };
  for (size_t i = 2; i < lines.size(); ++i) EXPECT_EQ(pipes(lines[i]), 10u) << lines[i];
}

}  // namespace
}  // namespace morphserve::bench
