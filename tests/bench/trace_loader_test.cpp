#include "bench/trace_loader.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>

#include <gtest/gtest.h>

#include "core/error.h"
#include "test_data.h"

namespace morphserve::bench {
namespace {

double mean_prompt(const Workload& w) {
  double sum = 0;
  for (const auto& r : w.requests) sum += static_cast<double>(r.prompt_tokens);
  return sum / static_cast<double>(w.requests.size());
}

double mean_output(const Workload& w) {
  double sum = 0;
  for (const auto& r : w.requests) sum += static_cast<double>(r.output_tokens);
  return sum / static_cast<double>(w.requests.size());
}

bool sorted(const Workload& w) {
  for (size_t i = 1; i < w.requests.size(); ++i)
    if (w.requests[i].arrival_seconds < w.requests[i - 1].arrival_seconds) return false;
  return true;
}

// The error message of parse_trace on `text`, or "" when it parsed.
std::string error_of(const std::string& text, TraceFormat format = TraceFormat::Auto) {
  try {
    parse_trace(text, "bad.csv", format);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "";
}

TEST(TraceLoader, LoadsTheRealAzureCodeTrace) {
  MORPHSERVE_REQUIRE_DATA(path, "traces/azure-llm-2023/AzureLLMInferenceTrace_code.csv");
  const Workload w = load_trace(path.string());
  ASSERT_EQ(w.requests.size(), 8819u);
  EXPECT_EQ(w.requests.front().arrival_seconds, 0.0);
  // 18:17:03.9799600 -> 19:14:19.93...: 3435.95 s.
  EXPECT_NEAR(w.requests.back().arrival_seconds, 3435.95, 0.01);
  EXPECT_TRUE(sorted(w));
  EXPECT_NEAR(mean_prompt(w), 2047.8, 0.05);
  EXPECT_NEAR(mean_output(w), 27.9, 0.05);
  // The first rows exactly: 18:17:03.9799600 (4808, 10), then 18:17:04.0319600 (3180, 8).
  EXPECT_EQ(w.requests[0].prompt_tokens, 4808);
  EXPECT_EQ(w.requests[0].output_tokens, 10);
  EXPECT_NEAR(w.requests[1].arrival_seconds, 0.052, 1e-9);
  EXPECT_EQ(w.requests[1].prompt_tokens, 3180);
  EXPECT_NE(w.source.find("azure:"), std::string::npos);
}

TEST(TraceLoader, LoadsTheRealAzureConversationTrace) {
  MORPHSERVE_REQUIRE_DATA(path, "traces/azure-llm-2023/AzureLLMInferenceTrace_conv.csv");
  const Workload w = load_trace(path.string(), TraceFormat::Azure);
  ASSERT_EQ(w.requests.size(), 19366u);
  // 18:15:46.68 -> 19:14:08.40.
  EXPECT_NEAR(w.requests.back().arrival_seconds, 3501.7, 0.1);
  EXPECT_NEAR(mean_prompt(w), 1154.7, 0.05);
  EXPECT_NEAR(mean_output(w), 211.1, 0.05);
}

TEST(TraceLoader, LoadsTheRealMooncakeTrace) {
  MORPHSERVE_REQUIRE_DATA(path, "traces/mooncake-fast25/conversation_trace.jsonl");
  const Workload w = load_trace(path.string());
  ASSERT_EQ(w.requests.size(), 12031u);
  EXPECT_EQ(w.requests.front().arrival_seconds, 0.0);
  EXPECT_NEAR(w.requests.back().arrival_seconds, 3536.999, 1e-6);
  EXPECT_TRUE(sorted(w));
  EXPECT_NEAR(mean_prompt(w), 12035, 1);
  EXPECT_NEAR(mean_output(w), 342.6, 0.05);
  EXPECT_EQ(w.requests[0].prompt_tokens, 6758);
  EXPECT_EQ(w.requests[0].output_tokens, 500);
  EXPECT_NE(w.source.find("mooncake:"), std::string::npos);
}

TEST(TraceLoader, ParsesAzureTimestampsAcrossDaysWithoutATimezone) {
  const Workload w = parse_trace(
      "TIMESTAMP,ContextTokens,GeneratedTokens\r\n"
      "2024-02-28 23:59:59.5000000,10,2\r\n"
      "2024-02-29 00:00:00.0000001,11,3\r\n"
      "2024-03-01 00:00:00,12,4",  // no fraction, no final newline
      "t.csv");
  ASSERT_EQ(w.requests.size(), 3u);
  EXPECT_NEAR(w.requests[1].arrival_seconds, 0.5000001, 1e-12);
  EXPECT_NEAR(w.requests[2].arrival_seconds, 86400.5, 1e-9);  // 2024 is a leap year
  EXPECT_EQ(w.requests[2].prompt_tokens, 12);
  EXPECT_EQ(w.requests[2].output_tokens, 4);
}

TEST(TraceLoader, ParsesBurstGptAndSkipsFailedRequests) {
  const std::string text =
      "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
      "5,ChatGPT,472,18,490,Conversation log\n"
      "45,ChatGPT,1087,0,1087,Conversation log\n"  // a failure: no response
      "118.5,GPT-4,417,276,693,API log\n";
  const auto dir = std::filesystem::temp_directory_path() / "morphserve_bench_trace_test";
  std::filesystem::create_directories(dir);
  const auto path = dir / "burst.csv";
  std::ofstream(path) << text;
  const Workload w = load_trace(path.string());
  ASSERT_EQ(w.requests.size(), 2u);
  EXPECT_EQ(w.requests[0].arrival_seconds, 0.0);
  EXPECT_EQ(w.requests[0].prompt_tokens, 472);
  EXPECT_EQ(w.requests[0].output_tokens, 18);
  EXPECT_DOUBLE_EQ(w.requests[1].arrival_seconds, 113.5);
  EXPECT_EQ(w.requests[1].output_tokens, 276);
  EXPECT_NE(w.source.find("burstgpt:"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(TraceLoader, SortsOutOfOrderRowsStablyAndSaysSo) {
  const Workload w = parse_trace(
      "{\"timestamp\": 1000, \"input_length\": 1, \"output_length\": 1}\n"
      "{\"timestamp\": 500, \"input_length\": 2, \"output_length\": 2}\n"
      "{\"timestamp\": 1000, \"input_length\": 3, \"output_length\": 3}\n",
      "t.jsonl");
  ASSERT_EQ(w.requests.size(), 3u);
  EXPECT_EQ(w.requests[0].prompt_tokens, 2);
  EXPECT_EQ(w.requests[1].prompt_tokens, 1);  // equal times keep file order
  EXPECT_EQ(w.requests[2].prompt_tokens, 3);
  EXPECT_DOUBLE_EQ(w.requests[2].arrival_seconds, 0.5);
  EXPECT_NE(w.source.find("1 rows out of time order"), std::string::npos) << w.source;
}

TEST(TraceLoader, RejectsMalformedInputNamingFileAndLine) {
  const std::string azure = "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,4808,10\n";
  struct Case {
    std::string text;
    std::string expect;  // in the message
  };
  const Case cases[] = {
      {"", "empty"},
      {"\r\n\r\n", "empty"},
      {"TIMESTAMP,ContextTokens,GeneratedTokens\r\n", "no requests"},
      {"time,prompt,output\n1,2,3\n", "line 1"},
      {azure + "2023-11-16 18:17:04.0,-5,3\n", "line 3: ContextTokens '-5' is negative"},
      {azure + "2023-11-16 18:17:04.0,12x,3\n", "line 3: ContextTokens '12x' is not a whole number"},
      {azure + "2023-11-16 18:17:04.0,12\n", "line 3: truncated row"},
      {azure + "2023-11-16 18:17:04.0,1,2,3\n", "line 3: expected 3 fields"},
      {azure + "2023-13-16 18:17:04.0,1,2\n", "line 3: TIMESTAMP"},
      {azure + "2023-02-30 18:17:04.0,1,2\n", "no such day"},
      {azure + "2023-11-16 18:17,1,2\n", "malformed"},
      {azure + "\n\n2023-11-16 18:17:04.0,99999999999999999999,2\n", "line 5: ContextTokens"},
      {"{\"timestamp\": 0, \"input_length\": 5, \"output_length\": 5}\n{\"timestamp\": 1, \"input_len",
       "line 2: not a complete JSON object"},
      {"{\"timestamp\": 0, \"input_length\": -5, \"output_length\": 5}\n", "line 1: \"input_length\" -5 is negative"},
      {"{\"timestamp\": 0, \"input_length\": 5.5, \"output_length\": 5}\n", "whole number"},
      {"{\"timestamp\": \"x\", \"input_length\": 5, \"output_length\": 5}\n", "timestamp"},
      {"{\"input_length\": 5, \"output_length\": 5}\n", "missing \"timestamp\""},
      {"{\"timestamp\": 0, \"input_length\": 5}\n", "missing \"output_length\""},
      {"{\"timestamp\": 0, \"input_length\": 5, \"output_length\": 5}\n[1,2]\n", "line 2: expected a JSON object"},
      {"Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\nnan,m,1,2,3,x\n", "line 2: Timestamp"},
      {"Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n1,m,1,2\n", "line 2: truncated row"},
  };
  for (const Case& c : cases) {
    const std::string message = error_of(c.text);
    EXPECT_NE(message.find("bad.csv"), std::string::npos) << c.text << " -> " << message;
    EXPECT_NE(message.find(c.expect), std::string::npos) << c.text << " -> " << message;
  }
  // An explicit format checks the header too.
  EXPECT_NE(error_of(azure, TraceFormat::BurstGpt).find("line 1: expected the header"), std::string::npos);
}

TEST(TraceLoader, MissingFileIsAnInvalidArgument) {
  EXPECT_THROW(load_trace("/nonexistent/trace.csv"), InvalidArgument);
  EXPECT_THROW(load_trace(std::filesystem::temp_directory_path().string()), InvalidArgument);
}

TEST(TraceLoader, NeverCrashesOnMangledInput) {
  // Every prefix of a valid file, and the file with single bytes flipped, either parses or
  // raises InvalidArgument: a small fuzz of the line parsers.
  const std::string good =
      "TIMESTAMP,ContextTokens,GeneratedTokens\r\n2023-11-16 18:17:03.9799600,4808,10\r\n"
      "2023-11-16 18:17:04.0319600,3180,8";
  const std::string jsonl = "{\"timestamp\": 0, \"input_length\": 5, \"output_length\": 5, \"hash_ids\": [1]}\n";
  for (const std::string& base : {good, jsonl}) {
    for (size_t n = 0; n <= base.size(); ++n) {
      try {
        parse_trace(base.substr(0, n), "fuzz");
      } catch (const InvalidArgument&) {
      }
    }
    for (size_t i = 0; i < base.size(); ++i) {
      for (char c : {'\0', ',', '-', '9', '{', '"', '\n', '.', ':'}) {
        std::string mangled = base;
        mangled[i] = c;
        try {
          parse_trace(mangled, "fuzz");
        } catch (const InvalidArgument&) {
        }
      }
    }
  }
}

TEST(TraceLoader, FormatNames) {
  EXPECT_EQ(parse_trace_format("azure"), TraceFormat::Azure);
  EXPECT_EQ(parse_trace_format("burstgpt"), TraceFormat::BurstGpt);
  EXPECT_EQ(parse_trace_format("mooncake"), TraceFormat::Mooncake);
  EXPECT_EQ(parse_trace_format("auto"), TraceFormat::Auto);
  EXPECT_EQ(trace_format_name(TraceFormat::BurstGpt), "burstgpt");
  EXPECT_THROW(parse_trace_format("csv"), InvalidArgument);
}

}  // namespace
}  // namespace morphserve::bench
