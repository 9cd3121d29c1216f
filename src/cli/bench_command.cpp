#include "cli/bench_command.h"

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "bench/prompt_source.h"
#include "bench/replay_client.h"
#include "bench/report.h"
#include "bench/server_url.h"
#include "bench/stats.h"
#include "bench/timeline_svg.h"
#include "bench/vocab_probe.h"
#include "bench/workload_spec.h"
#include "cli/progress_bar.h"
#include "core/error.h"
#include "core/units.h"

namespace morphserve::cli {

namespace {

using namespace morphserve::bench;

// Pseudo-random prompt ids stay below this unless --vocab-size says otherwise.
constexpr int64_t kPromptIdCap = 32000;

struct BenchOptions {
  std::string url;
  WorkloadSpec workload;
  std::string slo_ttft, slo_tpot;
  std::string prompt_text;
  std::string prompt_format = "ids";
  int64_t vocab_size = 0;  // 0: ask the server (bench/vocab_probe.h)
  std::string model, api_key;
  std::string endpoint = "/v1/completions";
  int64_t max_in_flight = 0;
  std::string request_timeout = "10m";
  std::string sample_interval = "1s";
  std::string out_path, plot_path;
};

// The model to ask for; also the start-up check that the server is there and answers.
std::string resolve_model(const ServerUrl& url, const BenchOptions& o) {
  if (o.model.empty()) return first_model_id(url, o.api_key);
  auto client = make_client(url, std::chrono::seconds(30), o.api_key);
  const JsonReply reply = get_json(*client, url, "/v1/models");
  if (reply.status == 0) {
    fail<InvalidArgument>("cannot reach {} ({}): is the server running and listening there?", url.str(), reply.error);
  }
  if (reply.status == 401 || reply.status == 403) {
    fail<InvalidArgument>("{} refused GET /v1/models with HTTP {}: give the server's key with --api-key", url.str(),
                          reply.status);
  }
  return o.model;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) fail<InvalidArgument>("cannot write {}", path);
}

void run_bench(const BenchOptions& o) {
  const ServerUrl url = parse_server_url(o.url);
  Slo slo;
  if (!o.slo_ttft.empty()) slo.ttft = parse_duration(o.slo_ttft);
  if (!o.slo_tpot.empty()) slo.tpot = parse_duration(o.slo_tpot);
  const double request_timeout = parse_duration(o.request_timeout);
  const double sample_interval = parse_duration(o.sample_interval);
  if (request_timeout <= 0) fail<InvalidArgument>("--request-timeout {}: must be positive", o.request_timeout);

  // Everything that can be checked without the server first, so a typo does not wait on it.
  if (o.workload.trace.empty() == o.workload.synthetic.empty()) {
    fail<InvalidArgument>("give exactly one of --trace FILE and --synthetic SPEC");
  }
  const Workload workload = build_workload(o.workload);
  if (workload.requests.empty()) {
    fail<InvalidArgument>("the workload has no requests (window, --rate-scale or --max-requests left none)");
  }
  PromptSourceOptions prompt_options;
  prompt_options.format = parse_prompt_format(o.prompt_format);
  prompt_options.text_path = o.prompt_text;
  prompt_options.seed = o.workload.seed;

  const std::string model = resolve_model(url, o);
  prompt_options.vocab_size = o.vocab_size;
  if (o.prompt_text.empty() && o.vocab_size == 0) {
    // Ids below 32000 as before for the large vocabularies (the same seed sends the same prompts);
    // smaller vocabularies are found instead of refused mid-run.
    const VocabSize vocab = discover_vocab_size(url, o.api_key, model, kPromptIdCap);
    std::fprintf(stderr, "bench: prompt ids below %lld (%s)\n", static_cast<long long>(vocab.size), vocab.how.c_str());
    prompt_options.vocab_size = vocab.size;
  }
  auto prompts = std::make_shared<PromptSource>(PromptSource::prepare(prompt_options, url, o.api_key, model));
  prompts->prepare_texts(workload, url, o.api_key, model);

  ReplayOptions replay_options;
  replay_options.url = o.url;
  replay_options.model = model;
  replay_options.api_key = o.api_key;
  replay_options.endpoint = o.endpoint;
  replay_options.prompts = prompts;
  replay_options.request_timeout_seconds = request_timeout;
  replay_options.max_in_flight = o.max_in_flight;
  replay_options.sample_interval_seconds = sample_interval;

  const double span = workload.requests.back().arrival_seconds;
  std::fprintf(stderr, "bench: %zu requests over %.1fs against %s (model %s); prompts: %s\n",
               workload.requests.size(), span, url.str().c_str(), model.c_str(), prompts->description().c_str());
  ProgressBar bar("bench", static_cast<int64_t>(workload.requests.size()));
  BenchRun run = replay(workload, replay_options, [&](const ReplayProgress& p) {
    bar.update(p.done, fmt::format("in flight {}, errors {}", p.in_flight, p.errors));
  });
  bar.finish();

  run.settings["source"] = workload.source;
  run.settings["seed"] = std::to_string(o.workload.seed);
  if (!o.workload.window.empty()) run.settings["window"] = o.workload.window;
  run.settings["time_scale"] = fmt::format("{}", o.workload.time_scale);
  run.settings["rate_scale"] = fmt::format("{}", o.workload.rate_scale);
  run.settings["prompt_scale"] = fmt::format("{}", o.workload.prompt_scale);
  run.settings["output_scale"] = fmt::format("{}", o.workload.output_scale);
  if (o.workload.max_prompt > 0) run.settings["max_prompt"] = std::to_string(o.workload.max_prompt);
  if (o.workload.max_output > 0) run.settings["max_output"] = std::to_string(o.workload.max_output);
  if (o.workload.max_requests > 0) run.settings["max_requests"] = std::to_string(o.workload.max_requests);
  run.settings["prompt_format"] = o.prompt_format;
  run.settings["sample_interval_seconds"] = fmt::format("{}", sample_interval);

  const BenchSummary summary = summarize(run, slo);
  std::fputs(summary_table(summary, slo).c_str(), stdout);
  std::fflush(stdout);
  if (!o.out_path.empty()) {
    write_file(o.out_path, to_json(run, summary, slo).dump(2) + "\n");
    std::fprintf(stderr, "wrote %s\n", o.out_path.c_str());
  }
  if (!o.plot_path.empty()) {
    write_file(o.plot_path, render_timeline_svg({{run.model, &run}}, slo));
    std::fprintf(stderr, "wrote %s\n", o.plot_path.c_str());
  }
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* c = app.add_subcommand("bench", "Replay a trace or a synthetic workload against an OpenAI-compatible server");
  c->add_option("--url", o->url, "the server, http://HOST:PORT")->required();
  auto* trace = c->add_option("--trace", o->workload.trace, "trace file (Azure, BurstGPT CSV or Mooncake JSONL), or a synthetic: spec");
  c->add_option("--trace-format", o->workload.trace_format, "auto, azure, burstgpt or mooncake")->capture_default_str();
  auto* synthetic = c->add_option("--synthetic", o->workload.synthetic, "generated workload, e.g. rate=4,requests=200,prompt=128-512,output=64");
  trace->excludes(synthetic);
  c->add_option("--window", o->workload.window, "START:LEN of the trace to replay, e.g. 0:72 or 10m:90s");
  c->add_option("--time-scale", o->workload.time_scale, "multiply arrival times (2 = half the rate)")->capture_default_str()->check(CLI::PositiveNumber);
  c->add_option("--rate-scale", o->workload.rate_scale, "keep (below 1) or repeat (above 1) requests")->capture_default_str()->check(CLI::PositiveNumber);
  c->add_option("--prompt-scale", o->workload.prompt_scale, "multiply prompt lengths")->capture_default_str()->check(CLI::PositiveNumber);
  c->add_option("--output-scale", o->workload.output_scale, "multiply output lengths")->capture_default_str()->check(CLI::PositiveNumber);
  c->add_option("--max-prompt", o->workload.max_prompt, "cap prompt lengths (0: none)")->capture_default_str()->check(CLI::NonNegativeNumber);
  c->add_option("--max-output", o->workload.max_output, "cap output lengths (0: none)")->capture_default_str()->check(CLI::NonNegativeNumber);
  c->add_option("--max-requests", o->workload.max_requests, "replay at most this many requests (0: all)")->capture_default_str()->check(CLI::NonNegativeNumber);
  c->add_option("--seed", o->workload.seed, "seed for shaping and prompts")->capture_default_str();
  c->add_option("--slo-ttft", o->slo_ttft, "time-to-first-token SLO, e.g. 2s or 500ms");
  c->add_option("--slo-tpot", o->slo_tpot, "time-per-output-token SLO, e.g. 100ms");
  c->add_option("--prompt-text", o->prompt_text, "text whose tokens make the prompts (tokenized by the server)")->check(CLI::ExistingFile);
  c->add_option("--prompt-format", o->prompt_format, "ids (exact lengths) or text (for servers that take only strings)")
      ->capture_default_str()->check(CLI::IsMember({"ids", "text"}));
  c->add_option("--vocab-size", o->vocab_size,
                "pseudo-random prompt ids stay below this (without --prompt-text; default: the server's vocabulary "
                "from GET /v1/models or found by 1-token probes, at most 32000)")
      ->check(CLI::Range(int64_t{8}, int64_t{2147483647}));
  c->add_option("--model", o->model, "model name to ask for (default: the first of GET /v1/models)");
  c->add_option("--api-key", o->api_key, "sent as Authorization: Bearer KEY");
  c->add_option("--endpoint", o->endpoint, "/v1/completions, or /v1/chat/completions with --prompt-format text")->capture_default_str();
  c->add_option("--max-in-flight", o->max_in_flight, "requests open at once at most (0: as the trace says)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  c->add_option("--request-timeout", o->request_timeout, "give up on a request after this long")->capture_default_str();
  c->add_option("--sample-interval", o->sample_interval, "poll /metrics and /morph this often (0: never)")->capture_default_str();
  c->add_option("--out", o->out_path, "write the run (every request, server samples, summary) as JSON");
  c->add_option("--plot", o->plot_path, "write the timeline as SVG");
  c->callback([o] { run_bench(*o); });
}

}  // namespace morphserve::cli
