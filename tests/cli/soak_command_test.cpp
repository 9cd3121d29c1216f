// The morphing soak, 30 seconds of it (scripts/soak.sh runs it for as long as asked): a real
// server on a tight budget through bursts with clients hanging up and idle phases. Every check
// of the soak must pass, and the run must have morphed, served and cycled.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "cli/run_command.h"
#include "sanitizers.h"

namespace morphserve::testing {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

TEST(SoakCommand, ThirtySecondsOfBurstsAndHangUpsLeaveNothingBehind) {
  const fs::path report_path = fs::path(::testing::TempDir()) / "soak_report.json";
  const fs::path log_path = fs::path(::testing::TempDir()) / "soak_server.log";
  fs::remove(report_path);
  // Under ASan the quarantine keeps freed memory resident, so RSS says nothing there; LeakSanitizer
  // in the server checks for leaks instead when it exits.
  const std::string rss_margin = MORPHSERVE_UNDER_ASAN ? " --rss-margin 2GiB" : "";
  const CommandResult r = run_morphserve("soak --duration 30s --burst 5s --clients 16 --report " +
                                         report_path.string() + " --server-log " + log_path.string() + rss_margin);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("soak passed"));

  std::ifstream in(report_path);
  const nlohmann::json report = nlohmann::json::parse(in);
  EXPECT_TRUE(report["passed"].get<bool>()) << report.dump(2);
  const auto& totals = report["totals"];
  EXPECT_GE(totals["cycles"].get<int>(), 2) << "bursts and idle phases alternate";
  EXPECT_GT(totals["requests"].get<int>(), 50);
  EXPECT_EQ(totals["failed"].get<int>(), 0);
  EXPECT_GT(totals["swaps_down"].get<int>(), 0) << "the budget is tight enough to morph";
  EXPECT_EQ(totals["swaps_up"], totals["swaps_down"]) << "every layer came back to full precision";
  int64_t hung_up = 0;
  for (const auto& cycle : report["cycles"]) {
    EXPECT_TRUE(cycle["problems"].empty()) << cycle.dump(2);
    EXPECT_EQ(cycle["requests"].get<int>(), cycle["completed"].get<int>() + cycle["refused"].get<int>() +
                                                cycle["disconnected"].get<int>() + cycle["failed"].get<int>());
    hung_up += cycle["disconnected"].get<int64_t>();
  }
  EXPECT_GT(hung_up, 0) << "some clients hung up mid-request";
  EXPECT_GE(report["budget_margin_bytes"].get<int64_t>(), 0);
}

TEST(SoakCommand, ImpossibleSettingsAreRefusedBeforeAnyServerStarts) {
  const CommandResult r = run_morphserve("soak --duration 0s");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("must be positive"));
  const CommandResult c = run_morphserve("soak --clients 0");
  EXPECT_EQ(c.exit_code, 1);
  EXPECT_THAT(c.err, HasSubstr("--clients must be at least 1"));
}

}  // namespace
}  // namespace morphserve::testing
