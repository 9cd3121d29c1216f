#pragma once
// Real request traces as workloads: arrival times and prompt/output lengths, nothing else (the
// traces carry no text; the replay client makes prompts of the recorded lengths).
//
//   Azure LLM inference 2023 (Splitwise) CSV   TIMESTAMP,ContextTokens,GeneratedTokens
//   BurstGPT CSV                                Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type
//   Mooncake FAST'25 JSONL                      {"timestamp": ms, "input_length": N, "output_length": M, ...}
//
// Arrivals are seconds since the earliest row, so every loaded workload starts at 0.
#include <string>
#include <string_view>

#include "bench/workload.h"

namespace morphserve::bench {

enum class TraceFormat { Auto, Azure, BurstGpt, Mooncake };

// "auto", "azure", "burstgpt", "mooncake"; InvalidArgument for anything else.
TraceFormat parse_trace_format(std::string_view name);
std::string_view trace_format_name(TraceFormat format);

// Reads and parses a trace file. Every problem (unreadable or empty file, wrong header, bad or
// negative number, truncated line) is an InvalidArgument naming the file, the line and the
// problem. Rows out of time order are sorted (stably) rather than rejected; the workload's
// source then says how many were out of order.
Workload load_trace(const std::string& path, TraceFormat format = TraceFormat::Auto);

// The same on text already in memory; `name` stands for the file in messages (tests, fuzzing).
Workload parse_trace(std::string_view text, const std::string& name, TraceFormat format = TraceFormat::Auto);

}  // namespace morphserve::bench
