#include "cli/soak_command.h"

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "cli/server_launcher.h"
#include "cli/soak_run.h"
#include "core/error.h"
#include "core/units.h"

namespace morphserve::cli {

namespace {

struct SoakCommandOptions {
  SoakOptions soak;
  std::string duration = "10m";
  std::string burst = "6s";
  std::string idle_timeout = "30s";
  std::string rss_margin = "16MiB";
  std::string report_path;
};

// Thrown as a morphserve Error so main prints it like any other failure and exits 1.
class SoakFailed : public Error {
 public:
  using Error::Error;
};

void run_soak_command(SoakCommandOptions& o) {
  o.soak.duration_seconds = parse_duration(o.duration);
  o.soak.burst_seconds = parse_duration(o.burst);
  o.soak.idle_timeout_seconds = parse_duration(o.idle_timeout);
  o.soak.rss_margin_bytes = parse_size(o.rss_margin);
  if (o.soak.duration_seconds <= 0 || o.soak.burst_seconds <= 0 || o.soak.idle_timeout_seconds <= 0) {
    fail<InvalidArgument>("--duration, --burst and --idle-timeout must be positive");
  }
  if (o.soak.clients < 1) fail<InvalidArgument>("--clients must be at least 1, got {}", o.soak.clients);
  if (!(o.soak.disconnect_fraction >= 0 && o.soak.disconnect_fraction <= 1)) {
    fail<InvalidArgument>("--disconnect-fraction must be between 0 and 1, got {}", o.soak.disconnect_fraction);
  }
  const SoakReport report = run_soak(self_executable(), o.soak);
  std::fputs(report.summary().c_str(), stdout);
  std::fflush(stdout);
  if (!o.report_path.empty()) {
    std::ofstream out(o.report_path, std::ios::binary);
    out << report.to_json().dump(2) << "\n";
    if (!out) fail<InvalidArgument>("cannot write {}", o.report_path);
    std::fprintf(stderr, "wrote %s\n", o.report_path.c_str());
  }
  if (!report.passed()) throw SoakFailed("the soak found problems (listed above)");
}

}  // namespace

void add_soak_command(CLI::App& app) {
  auto o = std::make_shared<SoakCommandOptions>();
  CLI::App* c = app.add_subcommand(
      "soak",
      "Run a server in --morph dynamic on a tight budget through alternating bursts (with clients hanging up at "
      "random) and idle phases, checking after each cycle that every request ended cleanly, KV blocks and the "
      "budget held, layers returned to full precision and RSS did not grow. Exits 1 on any problem");
  c->add_option("-m,--model", o->soak.model, "model to serve (a GGUF path or dummy:NAME)")->capture_default_str();
  c->add_option("--memory-budget", o->soak.memory_budget, "the server's --memory-budget: tight, so bursts morph")
      ->capture_default_str();
  c->add_option("--duration", o->duration, "how long to soak (cycles start while a burst still fits)")
      ->capture_default_str();
  c->add_option("--burst", o->burst, "length of each burst")->capture_default_str();
  c->add_option("--idle-timeout", o->idle_timeout, "longest wait after a burst for the server to be idle again")
      ->capture_default_str();
  c->add_option("--clients", o->soak.clients, "concurrent clients during a burst")->capture_default_str();
  c->add_option("--disconnect-fraction", o->soak.disconnect_fraction,
                "fraction of requests whose client hangs up after a random 20-520 ms")
      ->capture_default_str();
  c->add_option("--seed", o->soak.seed, "seed of the random requests")->capture_default_str();
  c->add_option("--rss-margin", o->rss_margin, "slack for the RSS checks")->capture_default_str();
  c->add_option("--server-arg", o->soak.server_args, "extra argument for `serve` (repeatable)")->allow_extra_args(false);
  c->add_option("--server-log", o->soak.server_log, "where the server's log goes (default: a temporary file)");
  c->add_option("--report", o->report_path, "write the cycles and checks as JSON here");
  c->callback([o] { run_soak_command(*o); });
}

}  // namespace morphserve::cli
