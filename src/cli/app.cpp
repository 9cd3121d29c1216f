#include "cli/app.h"

#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "cli/bench_command.h"
#include "cli/experiment_command.h"
#include "cli/export_command.h"
#include "cli/generate_command.h"
#include "cli/ppl_command.h"
#include "cli/quantize_command.h"
#include "cli/profile_command.h"
#include "cli/serve_command.h"
#include "cli/soak_command.h"
#include "core/error.h"

namespace morphserve::cli {

int run_app(int argc, char** argv) {
  // Logs go to stderr so stdout carries only what the command produces (generated text, results).
  spdlog::set_default_logger(spdlog::stderr_color_mt("morphserve"));
  spdlog::set_pattern("[%H:%M:%S.%e] [%^%l%$] %v");

  CLI::App app{"morphserve: a Llama serving engine that morphs layer precision under load"};
  app.set_version_flag("--version", "morphserve 0.1.0");
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  app.parse_complete_callback([&] { spdlog::set_level(spdlog::level::from_str(log_level)); });
  add_export_command(app);
  add_generate_command(app);
  add_ppl_command(app);
  add_quantize_command(app);
  add_profile_command(app);
  add_serve_command(app);
  add_bench_command(app);
  add_experiment_command(app);
  add_soak_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const Error& e) {
    std::fprintf(stderr, "morphserve: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "morphserve: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "morphserve: internal error: %s\n", e.what());
    return 2;
  }
  return 0;
}

}  // namespace morphserve::cli
