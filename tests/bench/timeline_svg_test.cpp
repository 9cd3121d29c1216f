#include "bench/timeline_svg.h"

#include <regex>
#include <vector>

#include <gtest/gtest.h>

#include "bench/svg.h"
#include "core/error.h"

namespace morphserve::bench {
namespace {

BenchRun pressured_run(double scale) {
  BenchRun run;
  for (int i = 0; i < 60; ++i) {
    RequestRecord r;
    r.index = static_cast<size_t>(i);
    r.scheduled_seconds = r.send_seconds = i * 0.5;
    const double ttft = i < 30 ? 0.2 : 3.0 * scale;  // the second half misses a 1 s SLO
    r.first_token_seconds = r.send_seconds + ttft;
    r.token_seconds = {*r.first_token_seconds, *r.first_token_seconds + 0.05};
    r.end_seconds = r.token_seconds.back();
    r.output_tokens = 2;
    r.http_status = i == 45 ? 503 : 200;
    if (i == 45) r.error = "HTTP 503";
    run.records.push_back(r);
  }
  for (int t = 0; t <= 35; ++t) {
    ServerSample s;
    s.seconds = t;
    s.values["num_requests_running"] = t % 7;
    s.values["num_requests_waiting"] = t > 15 ? t - 15 : 0;
    s.values["kv_blocks_total"] = 100 + (t > 20 ? 40 : 0);
    s.values["kv_blocks_used"] = 50 + t * 2;
    s.values["layers_quantized_w8"] = t > 20 ? 2 : 0;
    s.values["layers_quantized_w4"] = t > 25 ? 1 : 0;
    run.samples.push_back(s);
  }
  run.duration_seconds = 35;
  return run;
}

// Every element opened is closed in order: good enough to say the document is well formed.
void expect_balanced(const std::string& doc) {
  std::vector<std::string> stack;
  const std::regex tag(R"(<(/?)([a-zA-Z]+)[^>]*?(/?)>)");
  for (auto it = std::sregex_iterator(doc.begin(), doc.end(), tag); it != std::sregex_iterator(); ++it) {
    const std::string closing = (*it)[1], name = (*it)[2], self = (*it)[3];
    if (!self.empty()) continue;
    if (closing.empty()) {
      stack.push_back(name);
    } else {
      ASSERT_FALSE(stack.empty()) << "unexpected </" << name << ">";
      ASSERT_EQ(stack.back(), name);
      stack.pop_back();
    }
  }
  EXPECT_TRUE(stack.empty());
  // No raw '<' or '&' outside markup and entities.
  const std::string text = std::regex_replace(doc, tag, "");
  EXPECT_EQ(text.find('<'), std::string::npos);
  EXPECT_TRUE(std::regex_search(text, std::regex("&(?!(amp|lt|gt|quot|apos);)")) == false);
}

size_t count(const std::string& doc, const std::string& what) {
  size_t n = 0;
  for (size_t at = doc.find(what); at != std::string::npos; at = doc.find(what, at + 1)) ++n;
  return n;
}

TEST(TimelineSvg, DrawsEveryPanelForEveryArm) {
  const BenchRun off = pressured_run(1.0), dynamic = pressured_run(0.2);
  const std::string doc = render_timeline_svg({{"off", &off}, {"dynamic", &dynamic}}, Slo{1.0, 0});
  ASSERT_EQ(doc.rfind("<svg", 0), 0u);
  EXPECT_NE(doc.find("</svg>"), std::string::npos);
  expect_balanced(doc);
  EXPECT_NE(doc.find(">off</text>"), std::string::npos);
  EXPECT_NE(doc.find(">dynamic</text>"), std::string::npos);
  EXPECT_EQ(count(doc, "class=\"slo-ttft\""), 2u);
  for (const char* panel : {"arrivals per second", "time to first token", "requests on the server", "KV cache blocks",
                            "layers quantized"})
    EXPECT_EQ(count(doc, panel), 2u) << panel;
  // The first arm's second half is over the SLO, in the other colour; the failure is marked.
  EXPECT_GT(count(doc, "fill=\"#d62728\"/>"), 20u);
  EXPECT_GT(count(doc, "fill=\"#7f0000\""), 0u);
  EXPECT_EQ(doc.find("<script"), std::string::npos);
  EXPECT_EQ(doc.find("href"), std::string::npos);
}

TEST(TimelineSvg, LeavesOutSeriesTheServerNeverReported) {
  BenchRun run = pressured_run(1.0);
  for (auto& s : run.samples) s.values = {{"num_requests_running", 1}};
  const std::string doc = render_timeline_svg({{"vllm", &run}}, Slo{});
  expect_balanced(doc);
  EXPECT_NE(doc.find("requests on the server"), std::string::npos);
  EXPECT_EQ(doc.find("KV cache blocks"), std::string::npos);
  EXPECT_EQ(doc.find("layers quantized"), std::string::npos);
  EXPECT_EQ(doc.find("slo-ttft"), std::string::npos);  // no SLO set, no line
}

TEST(TimelineSvg, EscapesText) {
  const BenchRun run = pressured_run(1.0);
  const std::string doc = render_timeline_svg({{"a<b&\"c\"", &run}}, Slo{1.0, 0});
  expect_balanced(doc);
  EXPECT_NE(doc.find("a&lt;b&amp;&quot;c&quot;"), std::string::npos);
  EXPECT_EQ(doc.find("a<b"), std::string::npos);
  EXPECT_EQ(svg::escape("<&\"'>\x01"), "&lt;&amp;&quot;&apos;&gt; ");
}

TEST(TimelineSvg, HandlesEmptyAndMissingRuns) {
  const BenchRun empty;
  expect_balanced(render_timeline_svg({{"empty", &empty}}, Slo{1.0, 0}));
  expect_balanced(render_timeline_svg({}, Slo{}));
  EXPECT_THROW(render_timeline_svg({{"gone", nullptr}}, Slo{}), InvalidArgument);
}

TEST(TimelineSvg, NiceTicks) {
  EXPECT_EQ(svg::nice_ceil(0.7), 1.0);
  EXPECT_EQ(svg::nice_ceil(1.3), 2.0);
  EXPECT_EQ(svg::nice_ceil(3), 5.0);
  EXPECT_EQ(svg::nice_ceil(70), 100.0);
  const auto ticks = svg::nice_ticks(0, 3600, 8);
  ASSERT_FALSE(ticks.empty());
  EXPECT_EQ(ticks.front(), 0.0);
  EXPECT_EQ(ticks[1], 500.0);
  EXPECT_EQ(ticks.back(), 3500.0);
}

}  // namespace
}  // namespace morphserve::bench
