#pragma once
// An experiment file (JSON): one model, one server setup and one workload, replayed against each
// arm's server flags (DESIGN.md §1: `morphserve experiment experiments/pressure.json`). Paths in
// it are relative to the file's own folder.
//
//   {"name": "pressure", "description": "...",
//    "model": "dummy:small",
//    "serve": ["--memory-budget", "600MiB", "--max-num-seqs", "128"],
//    "workload": {"trace": "../../shared/data/traces/azure-llm-2023/AzureLLMInferenceTrace_code.csv",
//                 "window": "0:72", "time_scale": 1.0, "rate_scale": 0.2, "prompt_scale": 0.1,
//                 "output_scale": 1.0, "max_prompt": 512, "max_output": 256, "max_requests": 0, "seed": 1},
//       (or "synthetic": "synthetic:rate=4,requests=100,prompt=64,output=32")
//    "bench": {"slo_ttft": "2s", "slo_tpot": "0", "prompt_text": "", "vocab_size": 32000, "request_timeout": "600s"},
//    "arms": [{"name": "fp16", "serve": ["--morph", "off"]}, {"name": "dynamic", "serve": ["--morph", "dynamic"]}],
//    "quality": {"reference_arm": "fp16", "text": "../../shared/data/text/tinystories_val.txt",
//                "ppl_ctx": 512, "ppl_tokens": 16384}}
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bench/workload_spec.h"

namespace morphserve::cli {

struct ExperimentArm {
  std::string name;
  std::vector<std::string> serve_args;
};


struct ExperimentQuality {
  // The arm whose outputs, replayed one request at a time, are the full-precision reference.
  std::string reference_arm;
  std::string text;          // perplexity text
  int64_t ppl_ctx = 512;
  int64_t ppl_tokens = 16384;
};

struct ExperimentConfig {
  std::string path;  // the file it came from
  std::string name;
  std::string description;
  std::string model;
  std::vector<std::string> serve_args;  // for every arm, before the arm's own
  bench::WorkloadSpec workload;
  std::string slo_ttft = "0";
  std::string slo_tpot = "0";
  std::string prompt_text;     // text whose tokens make the prompts (tokenized by each arm's server)
  int64_t vocab_size = 32000;  // without prompt_text: pseudo-random prompt ids stay below this
  std::string request_timeout = "600s";
  std::vector<ExperimentArm> arms;
  std::optional<ExperimentQuality> quality;
};

// Reads and checks the file; relative paths become relative to its folder. Throws
// InvalidArgument naming the file and the field for anything missing, mistyped or unknown.
ExperimentConfig load_experiment_config(const std::string& path);

}  // namespace morphserve::cli
