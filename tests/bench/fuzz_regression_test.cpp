// Inputs fuzz/ found that once broke the trace parsers, each replayed exactly (they are also in
// fuzz/corpus). A regression fails here on every build, not only in a fuzzing run.
#include <string>

#include <gtest/gtest.h>

#include "bench/trace_loader.h"
#include "core/error.h"

namespace morphserve::bench {
namespace {

// fuzz_trace (corpus/fuzz_trace/burstgpt_span_overflows.csv): two finite timestamps, 1e308 and
// -1e308 seconds, are 2e308 apart, which is infinite as a double; the trace loaded with an
// infinite arrival, which the replay client would convert to a clock duration (undefined).
TEST(FuzzRegression, TraceWhoseSpanOverflowsIsRefused) {
  const std::string trace =
      "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
      "1e308,m,1,1,2,x\n"
      "-1e308,m,1,1,2,x\n";
  try {
    parse_trace(trace, "span.csv", TraceFormat::BurstGpt);
    ADD_FAILURE() << "a trace with an infinite arrival loaded";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("span.csv: the trace's times run from -1e+308 to 1e+308 seconds"),
              std::string::npos)
        << e.what();
  }
  // Far apart but finite still loads.
  const Workload w = parse_trace(
      "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n1e307,m,1,1,2,x\n-1e307,m,1,1,2,x\n",
      "wide.csv", TraceFormat::BurstGpt);
  ASSERT_EQ(w.requests.size(), 2u);
  EXPECT_EQ(w.requests.back().arrival_seconds, 2e307);
}

}  // namespace
}  // namespace morphserve::bench
