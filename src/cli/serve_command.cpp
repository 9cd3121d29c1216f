#include "cli/serve_command.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "cli/model_options.h"
#include "cli/morph_options.h"
#include "core/error.h"
#include "core/memory_budget.h"
#include "core/units.h"
#include "engine/engine.h"
#include "engine/llama_runner.h"
#include "engine/memory_plan.h"
#include "server/chat_template.h"
#include "server/haproxy_agent.h"
#include "server/http_server.h"
#include "server/shutdown_signal.h"

namespace morphserve::cli {

namespace {

using namespace std::chrono_literals;

struct ServeOptions {
  ModelOptions model;
  MorphOptions morph;
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string memory_budget = "auto";
  int block_size = 16;
  int64_t max_num_batched_tokens = 512;
  int max_num_seqs = 64;
  int64_t max_model_len = 0;  // 0: the model's context length
  int64_t max_queue = 256;
  std::string queue_timeout = "0";
  std::string api_key;
  std::vector<std::string> served_model_names;
  std::string max_body_bytes = "4MiB";
  std::string chat_template = "auto";
  std::string shutdown_timeout = "5s";
  std::string read_timeout = "30s";
  int http_threads = 128;
  std::string metrics_compat = "none";
  int haproxy_agent_port = -1;  // -1: no agent
  std::string debug_load_delay = "0";
};

// KV the "auto" budget reserves: enough for every sequence at full length, but at most 1 GiB and
// at least one full-length sequence.
constexpr size_t kAutoKvBytes = size_t{1} << 30;

size_t auto_budget(size_t fixed_bytes, const KvLayout& layout, int64_t max_num_seqs, int64_t max_model_len) {
  auto blocks_for = [&](int64_t tokens) { return static_cast<size_t>((tokens + layout.block_size - 1) / layout.block_size); };
  const size_t full = blocks_for(max_num_seqs * max_model_len) * layout.block_bytes();
  const size_t one = blocks_for(max_model_len) * layout.block_bytes();
  return fixed_bytes + std::max(one, std::min(full, kAutoKvBytes));
}

server::ChatTemplate resolve_chat_template(const ServeOptions& o, const LlamaModel& model) {
  const Tokenizer& t = model.tokenizer;
  auto token_text = [&](int32_t id) { return id >= 0 ? t.vocab().tokens[static_cast<size_t>(id)] : std::string(); };
  if (o.chat_template != "auto") {
    return server::make_chat_template(*server::parse_chat_template_family(o.chat_template), token_text(t.bos()),
                                      token_text(t.eos()));
  }
  server::ChatTemplate result = server::make_chat_template(model.chat_template, token_text(t.bos()), token_text(t.eos()));
  if (result.family == server::ChatTemplateFamily::Unknown) {
    spdlog::warn("the model's chat template is not one morphserve can render (llama2, mistral, llama3, chatml, zephyr): "
                 "/v1/chat/completions will answer 400; choose a family with --chat-template");
  } else if (result.family == server::ChatTemplateFamily::Default) {
    spdlog::info("the model has no chat template: chat prompts use the plain ChatML layout");
  } else {
    spdlog::info("chat template: {}", server::chat_template_family_name(result.family));
  }
  return result;
}

void run_serve(const ServeOptions& o) {
  if (o.port < 0 || o.port > 65535) fail<InvalidArgument>("--port must be between 0 and 65535, got {}", o.port);
  if (o.max_queue < 1) fail<InvalidArgument>("--max-queue must be at least 1, got {}", o.max_queue);
  if (o.chat_template != "auto" && !server::parse_chat_template_family(o.chat_template)) {
    fail<InvalidArgument>("--chat-template must be auto, default, llama2, mistral, llama3, chatml or zephyr, got '{}'",
                          o.chat_template);
  }
  const size_t max_body = parse_size(o.max_body_bytes);
  const double grace = parse_duration(o.shutdown_timeout);
  const double queue_timeout = parse_duration(o.queue_timeout);
  const double read_timeout = parse_duration(o.read_timeout);
  if (read_timeout <= 0) fail<InvalidArgument>("--read-timeout must be positive, got '{}'", o.read_timeout);
  const double load_delay = parse_duration(o.debug_load_delay);
  // An explicit budget limits the ledger from the first weight loaded; "auto" is sized once the
  // weights are in (and set then).
  const bool auto_sized = o.memory_budget == "auto";
  const size_t fixed_budget = auto_sized ? std::numeric_limits<size_t>::max() : parse_size(o.memory_budget);
  const server::ServedModelNames served_names = o.served_model_names.empty()
                                                     ? server::default_served_model_names(o.model.model_source())
                                                     : server::ServedModelNames{o.served_model_names, {}};
  const std::string& served_name = served_names.listed.front();
  o.morph.validate(o.model.precision);
  ModelOptions load_options = o.model;
  load_options.precision = o.morph.load_precision(o.model.precision);

  // Objects are declared so that they are destroyed in a safe order: the HTTP server (whose
  // handlers use the engine and the model) goes first, then the engine, then the model.
  server::ServerState state(served_names);
  server::ShutdownSignal signals([&](int sig) {
    spdlog::info("received {}: refusing new requests, finishing the ones in flight", sig == SIGINT ? "SIGINT" : "SIGTERM");
    state.begin_shutdown();
  });
  LoadedModel loaded;
  std::unique_ptr<MorphManager> morph;
  std::unique_ptr<MorphStatusSource> fixed_status;
  std::unique_ptr<Engine> engine;
  server::HttpServerOptions http_options{o.host, o.port, o.api_key, max_body, o.http_threads};
  http_options.read_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(std::ceil(std::min(read_timeout, 1e9) * 1000)));
  http_options.metrics_compat = *server::parse_metrics_compat(o.metrics_compat);
  server::HttpServer http(http_options, state);
  const int port = http.start();
  std::fprintf(stderr, "listening on http://%s:%d\n", o.host.c_str(), port);
  // Declared after the engine: it reads the engine's snapshot until it stops.
  server::HaproxyAgent agent(state);
  if (o.haproxy_agent_port >= 0) {
    const int agent_port = agent.start(o.host, o.haproxy_agent_port);
    std::fprintf(stderr, "haproxy agent listening on %s:%d\n", o.host.c_str(), agent_port);
  }
  std::fflush(stderr);

  if (load_delay > 0 && signals.wait(std::chrono::milliseconds(static_cast<int64_t>(load_delay * 1000)))) return;
  loaded = load_for_cli(load_options, fixed_budget);
  if (signals.received()) return;
  LlamaModel& model = *loaded.model;
  std::optional<MorphPlan> morph_plan;
  if (o.morph.dynamic()) morph_plan = plan_morph(o.morph, o.model.model_source(), model, *loaded.pool);
  if (signals.received()) return;

  int64_t max_model_len = model.config.context_length;
  if (o.max_model_len > 0) {
    if (o.max_model_len > model.config.context_length) {
      spdlog::warn("--max-model-len {} exceeds the model's context of {}; using {}", o.max_model_len,
                   model.config.context_length, model.config.context_length);
    }
    max_model_len = std::min(o.max_model_len, model.config.context_length);
  }
  const KvLayout layout{model.config.n_layers, o.block_size, model.config.kv_dim(), o.model.resolve_kv_type(model)};
  layout.validate();
  // Dynamic morphing keeps the layers' linear weights in regions (plus staging slots for swaps);
  // embeddings, the classifier and norms stay where they are.
  size_t layer_linear_bytes = 0;
  for (const LayerWeights& layer : model.weights.layers) layer_linear_bytes += layer.linear_bytes();
  const size_t other_weight_bytes = morph_plan ? model.weights.bytes() - layer_linear_bytes : model.weights.bytes();
  const size_t weight_bytes = other_weight_bytes + (morph_plan ? morph_plan->resident_bytes : 0);
  const size_t workspace_bytes = LlamaRunner::workspace_bytes_for(model.config, o.max_num_batched_tokens);
  const size_t budget =
      auto_sized ? auto_budget(weight_bytes + workspace_bytes, layout, o.max_num_seqs, max_model_len) : fixed_budget;
  const MemoryPlan plan = plan_memory(budget, weight_bytes, workspace_bytes, layout, max_model_len);
  std::fprintf(stderr, "%s\n", plan.describe().c_str());
  std::fflush(stderr);

  // Everything resident is allocated through the backend against the ledger: the weight matrices
  // as they were loaded, the regions and staging slots by the morph manager, the KV base and the
  // workspace by the engine. The norm and bias vectors are host vectors outside the backend
  // (backend/README.md), reserved here.
  MemoryBudget& ledger = *loaded.ledger;
  ledger.set_budget(budget);
  size_t vector_bytes = (model.weights.output_norm.size() + model.weights.rope_freqs.size()) * sizeof(float);
  for (const LayerWeights& layer : model.weights.layers) vector_bytes += layer.vector_bytes();
  ledger.reserve("weight vectors", vector_bytes);
  if (morph_plan) {
    morph = std::make_unique<MorphManager>(model, std::move(morph_plan->store), morph_plan->config, *loaded.backend);
  } else {
    fixed_status = std::make_unique<FixedPrecisionStatus>(o.morph.morph, model);
  }

  EngineConfig config;
  config.scheduler.max_num_batched_tokens = o.max_num_batched_tokens;
  config.scheduler.max_num_seqs = o.max_num_seqs;
  config.block_size = o.block_size;
  config.kv_type = layout.type;
  config.kv_blocks = plan.kv_blocks;
  config.max_queue = static_cast<size_t>(o.max_queue);
  // Capped far beyond any real wait, so that the conversion cannot overflow.
  config.queue_timeout = std::chrono::milliseconds(static_cast<int64_t>(std::ceil(std::min(queue_timeout, 1e9) * 1000)));
  config.hook = morph.get();
  config.max_model_len = max_model_len;
  engine = std::make_unique<Engine>(model, config, *loaded.backend);
  max_model_len = engine->max_tokens_per_request();  // what the engine's admission enforces
  spdlog::info("memory ledger: {}", ledger.describe());

  const MorphStatusSource* morph_status = morph ? static_cast<const MorphStatusSource*>(morph.get()) : fixed_status.get();
  state.set_ready({engine.get(), &model, resolve_chat_template(o, model), max_model_len, morph_status});
  spdlog::info("serving {} (max model length {}) on http://{}:{}", served_name, max_model_len, o.host, port);

  signals.wait();
  // Drain: requests in flight may finish within the grace period; then they are cancelled.
  if (state.wait_idle(std::chrono::milliseconds(static_cast<int64_t>(grace * 1000)))) {
    engine->shutdown(true);
  } else {
    spdlog::warn("cancelling {} requests still running after {} s", state.in_flight(), grace);
    state.abort_in_flight();
    engine->shutdown(false);
    if (!state.wait_idle(5s)) spdlog::warn("{} responses did not end in time", state.in_flight());
  }
  http.stop();
  spdlog::info("stopped");
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto options = std::make_shared<ServeOptions>();
  CLI::App* command = app.add_subcommand("serve", "Serve the model over an OpenAI-compatible HTTP API");
  ServeOptions& o = *options;
  o.model.add_to(*command);
  o.morph.add_to(*command);
  command->add_option("--host", o.host, "address to listen on")->capture_default_str();
  command->add_option("--port", o.port, "port to listen on; 0 picks a free one (printed at start-up)")->capture_default_str();
  command->add_option("--memory-budget", o.memory_budget,
                      "resident memory for weights + workspace + KV cache, e.g. 3GiB; auto: weights + workspace + "
                      "up to 1 GiB of KV (no more than max-num-seqs full-length sequences need)")
      ->capture_default_str();
  command->add_option("--block-size", o.block_size, "tokens per KV block")->capture_default_str()->check(CLI::PositiveNumber);
  command->add_option("--max-num-batched-tokens", o.max_num_batched_tokens, "tokens per forward pass")
      ->capture_default_str()->check(CLI::PositiveNumber);
  command->add_option("--max-num-seqs", o.max_num_seqs, "sequences per forward pass")
      ->capture_default_str()->check(CLI::PositiveNumber);
  command->add_option("--max-model-len", o.max_model_len,
                      "prompt + completion tokens of one request (default and cap: the model's context length)")
      ->check(CLI::NonNegativeNumber);
  command->add_option("--max-queue", o.max_queue, "waiting requests beyond this get HTTP 429")->capture_default_str();
  command->add_option("--queue-timeout", o.queue_timeout,
                      "a request not yet scheduled after waiting this long (e.g. 30s) is dropped with HTTP 503 "
                      "and Retry-After (a stream ends with an error event); 0: wait as long as it takes")
      ->capture_default_str();
  command->add_option("--api-key", o.api_key, "require 'Authorization: Bearer KEY' (health and metrics stay open)")
      ->envname("MORPHSERVE_API_KEY");
  command->add_option("--served-model-name", o.served_model_names,
                      "the model's names in the API, the first one in responses (default: the file's stem, with "
                      "the -m value also accepted)");
  command->add_option("--max-body-bytes", o.max_body_bytes, "largest request body; bigger ones get HTTP 413")
      ->capture_default_str();
  command->add_option("--chat-template", o.chat_template,
                      "auto (from the GGUF), or force a family: default, llama2, mistral, llama3, chatml, zephyr")
      ->capture_default_str();
  command->add_option("--shutdown-timeout", o.shutdown_timeout,
                      "on SIGINT/SIGTERM, how long requests in flight may take before they are cancelled")
      ->capture_default_str();
  command->add_option("--http-threads", o.http_threads, "connections served at once (each stream holds one)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  command->add_option("--read-timeout", o.read_timeout,
                      "a client must send each request (headers and body) within this from its first byte; a "
                      "slower one gets HTTP 408 and is disconnected")
      ->capture_default_str();
  command->add_option("--haproxy-agent-port", o.haproxy_agent_port,
                      "answer HAProxy's agent-check on this port (0: any free one): 'up N%' with a weight from free "
                      "KV, queue and precision, 'drain' while shutting down, 'down' while loading")
      ->check(CLI::Range(0, 65535));
  command->add_option("--metrics-compat", o.metrics_compat,
                      "vllm: /metrics also answers under vLLM's names (vllm:num_requests_waiting, "
                      "vllm:kv_cache_usage_perc, vllm:lora_requests_info, ...) for the Kubernetes Endpoint Picker "
                      "and llm-d; see docs/scale-out.md")
      ->capture_default_str()->check(CLI::IsMember({"none", "vllm"}));
  // For tests: holds the server in the loading state this long before loading the model.
  command->add_option("--debug-load-delay", o.debug_load_delay)->group("");
  command->callback([options] { run_serve(*options); });
}

}  // namespace morphserve::cli
