#include "bench/replay_client.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bench/completion_call.h"
#include "bench/growing_pool.h"
#include "bench/server_sampler.h"
#include "bench/server_url.h"
#include "core/error.h"

namespace morphserve::bench {

namespace {

using Clock = std::chrono::steady_clock;

bool is_chat(const std::string& endpoint) { return endpoint.find("chat/completions") != std::string::npos; }

std::string dump_body(const nlohmann::json& body) {
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void check_options(const Workload& workload, const ReplayOptions& options, const PromptSource& prompts) {
  if (options.request_timeout_seconds <= 0) fail<InvalidArgument>("--request-timeout must be positive");
  if (options.max_in_flight < 0) fail<InvalidArgument>("--max-in-flight must be 0 (no cap) or positive");
  if (!options.extra_fields.is_object()) fail<InvalidArgument>("extra request fields must be a JSON object");
  if (is_chat(options.endpoint) && prompts.format() == PromptFormat::Ids) {
    fail<InvalidArgument>("{} takes messages, not token ids: use --prompt-format text", options.endpoint);
  }
  for (const WorkloadRequest& r : workload.requests) {
    if (r.prompt_tokens <= 0 || r.output_tokens <= 0) {
      fail<InvalidArgument>("the workload has a request with {} prompt and {} output tokens; every request needs at "
                            "least one of each (see --max-prompt/--prompt-scale)",
                            r.prompt_tokens, r.output_tokens);
    }
  }
}

// One short request like the run's, answered whole; InvalidArgument when the server refuses it.
void preflight(const ServerUrl& url, const ReplayOptions& options, const std::string& model, const PromptSource& prompts) {
  nlohmann::json prompt = prompts.format() == PromptFormat::Ids ? nlohmann::json::array({prompts.max_token_id()})
                                                                  : nlohmann::json("Hello");
  nlohmann::json body = completion_body(options, model, std::move(prompt), 1);
  body["stream"] = false;
  body.erase("stream_options");
  CompletionCall call{options.endpoint, is_chat(options.endpoint), dump_body(body), options.request_timeout_seconds, true};
  RequestRecord record;
  run_completion(url, options.api_key, call, Clock::now(), record);
  if (record.ok()) return;
  const std::string hint = record.http_status == 400 && prompts.format() == PromptFormat::Ids
                               ? fmt::format(" (was token id {} beyond its vocabulary? lower --vocab-size or give --prompt-text)",
                                             prompts.max_token_id())
                               : "";
  fail<InvalidArgument>("{} refused a 1-token {} request before the run: {}{}", url.str(), options.endpoint,
                        record.error.empty() ? fmt::format("HTTP {}", record.http_status) : record.error, hint);
}

}  // namespace

nlohmann::json completion_body(const ReplayOptions& options, const std::string& model, nlohmann::json prompt,
                               int64_t max_tokens) {
  nlohmann::json body = {{"model", model}, {"max_tokens", max_tokens}, {"temperature", 0}, {"ignore_eos", true},
                         {"stream", options.stream}};
  if (is_chat(options.endpoint)) {
    body["messages"] = nlohmann::json::array({{{"role", "user"}, {"content", std::move(prompt)}}});
  } else {
    body["prompt"] = std::move(prompt);
  }
  if (options.stream) body["stream_options"] = {{"include_usage", true}};
  for (const auto& [key, value] : options.extra_fields.items()) {
    if (value.is_null()) {
      body.erase(key);
    } else {
      body[key] = value;
    }
  }
  return body;
}

BenchRun replay(const Workload& workload, const ReplayOptions& options, const ProgressFn& progress) {
  const ServerUrl url = parse_server_url(options.url);
  BenchRun run;
  run.url = url.str();
  run.model = options.model.empty() ? first_model_id(url, options.api_key) : options.model;
  run.workload = workload;
  std::shared_ptr<const PromptSource> prompts = options.prompts;
  if (!prompts) prompts = std::make_shared<PromptSource>(PromptSource::prepare({}, url, options.api_key, run.model));
  check_options(workload, options, *prompts);
  if (options.preflight) preflight(url, options, run.model, *prompts);

  run.settings["endpoint"] = options.endpoint;
  run.settings["stream"] = options.stream ? "true" : "false";
  run.settings["max_in_flight"] = std::to_string(options.max_in_flight);
  run.settings["request_timeout_seconds"] = fmt::format("{}", options.request_timeout_seconds);
  run.settings["prompts"] = prompts->description();

  const size_t n = workload.requests.size();
  run.records.resize(n);
  std::mutex mutex;  // guards the counters below and serializes progress calls
  std::condition_variable slot_free;
  ReplayProgress counts;
  counts.total = static_cast<int64_t>(n);
  const auto report = [&] {  // with `mutex` held
    if (progress) progress(counts);
  };

  const Clock::time_point origin = Clock::now();
  std::unique_ptr<ServerSampler> sampler;
  if (options.sample_interval_seconds > 0) {
    sampler = std::make_unique<ServerSampler>(url, options.api_key, options.sample_interval_seconds, origin);
    sampler->start();
  }
  {
    GrowingPool pool;
    for (size_t i = 0; i < n; ++i) {
      const WorkloadRequest& w = workload.requests[i];
      RequestRecord& record = run.records[i];
      record.index = i;
      record.scheduled_seconds = w.arrival_seconds;
      record.prompt_tokens = w.prompt_tokens;
      record.max_tokens = w.output_tokens;
      std::this_thread::sleep_until(origin + std::chrono::duration_cast<Clock::duration>(
                                                 std::chrono::duration<double>(w.arrival_seconds)));
      {
        std::unique_lock lock(mutex);
        if (options.max_in_flight > 0) {
          slot_free.wait(lock, [&] { return counts.in_flight < options.max_in_flight; });
        }
        ++counts.in_flight;
        ++counts.sent;
        report();
      }
      pool.submit([&, i] {
        RequestRecord& r = run.records[i];
        try {
          const WorkloadRequest& req = workload.requests[i];
          const nlohmann::json body = completion_body(options, run.model, prompts->prompt(i, req.prompt_tokens), req.output_tokens);
          CompletionCall call{options.endpoint, is_chat(options.endpoint), dump_body(body),
                              options.request_timeout_seconds, prompts->exact()};
          run_completion(url, options.api_key, call, origin, r);
        } catch (const std::exception& e) {
          // Never lose the run over one request.
          r.error = fmt::format("client error: {}", e.what());
          r.end_seconds = std::chrono::duration<double>(Clock::now() - origin).count();
        }
        std::lock_guard lock(mutex);
        --counts.in_flight;
        ++counts.done;
        if (!r.ok()) ++counts.errors;
        report();
        slot_free.notify_one();
      });
    }
    pool.wait_idle();
  }
  if (sampler) run.samples = sampler->stop();

  double first_send = 0.0, last_end = 0.0;
  bool any = false;
  for (const RequestRecord& r : run.records) {
    first_send = any ? std::min(first_send, r.send_seconds) : r.send_seconds;
    last_end = any ? std::max(last_end, r.end_seconds) : r.end_seconds;
    any = true;
  }
  run.duration_seconds = any ? last_end - first_send : 0.0;
  if (counts.errors > 0) {
    spdlog::warn("{} of {} requests failed; first error: {}", counts.errors, n,
                 std::find_if(run.records.begin(), run.records.end(), [](const RequestRecord& r) { return !r.ok(); })->error);
  }
  return run;
}

}  // namespace morphserve::bench
