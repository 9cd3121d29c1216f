#include "cli/experiment_command.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "backend/cpu_backend.h"
#include "bench/prompt_source.h"
#include "bench/replay_client.h"
#include "bench/report.h"
#include "bench/server_url.h"
#include "bench/stats.h"
#include "bench/timeline_svg.h"
#include "bench/workload_spec.h"
#include "cli/experiment_config.h"
#include "cli/experiment_quality.h"
#include "cli/progress_bar.h"
#include "cli/server_launcher.h"
#include "core/error.h"
#include "core/units.h"
#include "engine/model_loader.h"
#include "kernels/thread_pool.h"

namespace morphserve::cli {

namespace {

using namespace std::chrono_literals;

struct ExperimentOptions {
  std::string config_path;
  std::string out_dir;
  std::string arms;  // comma-separated subset; empty: all
};

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) fail<InvalidArgument>("cannot write {}", path.string());
}

// One arm: a fresh server, the workload, the server stopped. `sequential` replays one request at
// a time (the quality reference: no batching can move its outputs).
bench::BenchRun run_arm(const ExperimentConfig& config, const ExperimentArm& arm, const bench::Workload& workload,
                        const std::filesystem::path& out, const std::string& label, bool sequential) {
  std::vector<std::string> args{"-m", config.model};
  args.insert(args.end(), config.serve_args.begin(), config.serve_args.end());
  args.insert(args.end(), arm.serve_args.begin(), arm.serve_args.end());
  spdlog::info("{}: starting morphserve serve {}", label, fmt::join(args, " "));
  ServerLauncher server(self_executable(), args, (out / (label + ".server.log")).string(), 600s);

  bench::PromptSourceOptions prompt_options;
  prompt_options.text_path = config.prompt_text;
  prompt_options.seed = config.workload.seed;
  prompt_options.vocab_size = config.vocab_size;
  const bench::ServerUrl url = bench::parse_server_url(server.url());
  const std::string model = bench::first_model_id(url, "");
  auto prompts = std::make_shared<bench::PromptSource>(bench::PromptSource::prepare(prompt_options, url, "", model));
  bench::ReplayOptions replay;
  replay.url = server.url();
  replay.model = model;
  replay.prompts = prompts;
  replay.request_timeout_seconds = parse_duration(config.request_timeout);
  if (sequential) replay.max_in_flight = 1;
  // Every token then arrives in a chunk of its own, even one that decodes to no text yet (a UTF-8
  // sequence cut in the middle, or a random-weight model's empty pieces), so token times are exact.
  replay.extra_fields = {{"logprobs", 0}};

  ProgressBar bar(label, static_cast<int64_t>(workload.requests.size()));
  bench::BenchRun run = bench::replay(workload, replay, [&](const bench::ReplayProgress& p) {
    bar.update(p.done, fmt::format("{} in flight, {} errors", p.in_flight, p.errors));
  });
  bar.finish();
  run.settings["arm"] = label;
  run.settings["serve"] = fmt::format("{}", fmt::join(args, " "));
  const auto code = server.stop(60s);
  if (!code || *code != 0) spdlog::warn("{}: the server did not exit cleanly (see {}.server.log)", label, label);
  return run;
}

void run_experiment(const ExperimentOptions& o) {
  const ExperimentConfig config = load_experiment_config(o.config_path);
  std::vector<ExperimentArm> arms;
  const auto wanted = split_commas(o.arms);
  for (const ExperimentArm& arm : config.arms) {
    if (wanted.empty() || std::find(wanted.begin(), wanted.end(), arm.name) != wanted.end()) arms.push_back(arm);
  }
  if (arms.empty()) fail<InvalidArgument>("--arms {} matches none of the arms in {}", o.arms, config.path);
  const std::filesystem::path out = o.out_dir.empty() ? std::filesystem::path("runs") / config.name : std::filesystem::path(o.out_dir);
  std::filesystem::create_directories(out);

  const bench::Workload workload = bench::build_workload(config.workload);
  if (workload.requests.empty()) fail<InvalidArgument>("{}: the workload has no requests after shaping", config.path);
  const bench::Slo slo{parse_duration(config.slo_ttft), parse_duration(config.slo_tpot)};
  std::fprintf(stderr, "experiment %s: %zu requests over %.1f s (%s), %zu arms\n", config.name.c_str(),
               workload.requests.size(), workload.requests.back().arrival_seconds, workload.source.c_str(), arms.size());

  std::vector<bench::BenchRun> runs;
  std::vector<std::pair<std::string, bench::BenchSummary>> summaries;
  for (const ExperimentArm& arm : arms) {
    runs.push_back(run_arm(config, arm, workload, out, arm.name, false));
    const bench::BenchSummary summary = bench::summarize(runs.back(), slo);
    write_file(out / (arm.name + ".json"), bench::to_json(runs.back(), summary, slo).dump(1));
    summaries.emplace_back(arm.name, summary);
  }

  std::vector<bench::ExtraColumn> extra;
  if (config.quality) {
    const ExperimentQuality& q = *config.quality;
    const auto reference_arm = std::find_if(config.arms.begin(), config.arms.end(),
                                            [&](const ExperimentArm& a) { return a.name == q.reference_arm; });
    const bench::BenchRun reference = run_arm(config, *reference_arm, workload, out, "reference", true);
    write_file(out / "reference.json", bench::to_json(reference, bench::summarize(reference, slo), slo).dump(1));
    ThreadPool pool;
    UnmeteredCpuBackend backend(pool);
    const LlamaModel tokenizer_model = load_model(config.model, "", pool, backend);
    PerplexityCache perplexities(config.model, q.text, q.ppl_ctx, q.ppl_tokens, pool);
    bench::ExtraColumn agreement{"tokens equal to FP greedy", {}};
    bench::ExtraColumn weighted{"ppl of states (token-weighted)", {}};
    for (const bench::BenchRun& run : runs) {
      const TokenAgreement a = token_agreement(run, reference, tokenizer_model.tokenizer);
      agreement.values.push_back(fmt::format("{:.1f}% of {}", 100.0 * a.share, a.reference_tokens));
      const auto states = tokens_per_precision_state(run);
      weighted.values.push_back(states.empty() ? "-" : fmt::format("{:.4f}", perplexities.weighted(states).perplexity));
    }
    extra = {agreement, weighted};
  }

  const std::string table = bench::comparison_table(summaries, slo, extra);
  std::vector<std::pair<std::string, const bench::BenchRun*>> timelines;
  for (size_t i = 0; i < runs.size(); ++i) timelines.emplace_back(arms[i].name, &runs[i]);
  write_file(out / "timeline.svg", bench::render_timeline_svg(timelines, slo));
  const std::string header = fmt::format("# {}\n\n{}\n\nWorkload: {} ({} requests). SLO: TTFT {} s{}.\n\n", config.name,
                                         config.description, workload.source, workload.requests.size(), slo.ttft,
                                         slo.tpot > 0 ? fmt::format(", TPOT {} s", slo.tpot) : "");
  write_file(out / "comparison.md", header + table + "\n");
  std::printf("%s\n", table.c_str());
  std::fprintf(stderr, "wrote %s/{comparison.md,timeline.svg,<arm>.json,<arm>.server.log}\n", out.string().c_str());
}

}  // namespace

void add_experiment_command(CLI::App& app) {
  auto options = std::make_shared<ExperimentOptions>();
  CLI::App* command = app.add_subcommand(
      "experiment", "Replay one workload against a fresh server per arm and compare them (see experiments/)");
  command->add_option("config", options->config_path, "experiment file (JSON)")->required();
  command->add_option("--out", options->out_dir, "folder for the results (default: runs/<name>)");
  command->add_option("--arms", options->arms, "only these arms, comma-separated");
  command->callback([options] { run_experiment(*options); });
}

}  // namespace morphserve::cli
