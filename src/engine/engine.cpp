#include "engine/engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/heap_release.h"
#include "engine/llama_runner.h"
#include "engine/output_processor.h"

namespace morphserve {

using Clock = std::chrono::steady_clock;

namespace {
double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }
}  // namespace

struct Engine::ActiveRequest {
  ActiveRequest(uint64_t id, RequestParams p, const Tokenizer& tokenizer)
      : params(std::move(p)),
        stream(std::make_shared<RequestStream>(id)),
        sampler(params.sampling, Penalties{params.presence_penalty, params.frequency_penalty}, params.logprobs),
        output(tokenizer, params),
        arrival(Clock::now()) {
    seq.id = id;
    seq.tokens = params.prompt;
    seq.num_prompt_tokens = static_cast<int64_t>(params.prompt.size());
  }

  RequestParams params;
  std::shared_ptr<RequestStream> stream;
  Sequence seq;
  Sampler sampler;
  OutputProcessor output;
  Clock::time_point arrival;
  Clock::time_point first_token;
  Clock::time_point last_token;
  bool scheduled_once = false;
  bool finished = false;
};

Engine::Engine(const LlamaModel& model, const EngineConfig& config, Backend& backend)
    : model_(model),
      config_(config),
      backend_(backend),
      kv_(KvLayout{model.config.n_layers, config.block_size, model.config.kv_dim(), config.kv_type}, config.kv_blocks,
          backend),
      scheduler_(config.scheduler, kv_) {
  config_.scheduler.validate();
  runner_ = std::make_unique<LlamaRunner>(model_, kv_, backend_, config_.scheduler.max_num_batched_tokens);
  base_kv_blocks_ = kv_.capacity_blocks();
  if (config_.hook) config_.hook->attach(kv_, *runner_);
  publish_snapshot();
  thread_ = std::thread([this] { run(); });
}

Engine::~Engine() { shutdown(false); }

int64_t Engine::max_tokens_per_request() const {
  int64_t limit = model_.config.context_length;
  if (config_.max_model_len > 0) limit = std::min(limit, config_.max_model_len);
  // The base capacity, not today's: segments a swap attached go away again, and a request that
  // only fits with them would wait forever once they have.
  return std::min<int64_t>(limit, base_kv_blocks_ * kv_.layout().block_size);
}

std::shared_ptr<RequestStream> Engine::submit(RequestParams params) {
  params.validate();
  const auto n_prompt = static_cast<int64_t>(params.prompt.size());
  for (int32_t token : params.prompt) {
    if (token < 0 || token >= model_.config.vocab_size) {
      throw RequestRejected(RequestRejected::Reason::TokenOutsideVocabulary,
                            fmt::format("prompt token id {} is outside the vocabulary (0-{})", token, model_.config.vocab_size - 1),
                            n_prompt, params.max_tokens, model_.config.vocab_size, token);
    }
  }
  const int64_t limit = max_tokens_per_request();
  if (n_prompt >= limit) {
    throw RequestRejected(RequestRejected::Reason::PromptTooLong,
                          fmt::format("the prompt ({} tokens) leaves no room for a completion within {} tokens per request",
                                      n_prompt, limit),
                          n_prompt, params.max_tokens, limit);
  }
  // Compared without adding: max_tokens comes from clients and may be near INT64_MAX.
  if (params.max_tokens > limit - n_prompt) {
    throw RequestRejected(RequestRejected::Reason::CompletionTooLong,
                          fmt::format("the prompt ({} tokens) plus max_tokens ({}) exceeds {} tokens per request (the "
                                      "model's context, --max-model-len and the KV cache)",
                                      n_prompt, params.max_tokens, limit),
                          n_prompt, params.max_tokens, limit);
  }
  auto request = std::make_unique<ActiveRequest>(next_id_++, std::move(params), model_.tokenizer);
  auto stream = request->stream;
  {
    std::lock_guard lock(mutex_);
    if (!accepting_) fail<ShuttingDown>("the server is shutting down");
    const size_t queued = incoming_.size() + static_cast<size_t>(snapshot_.num_waiting);
    if (queued >= config_.max_queue) {
      fail<QueueFull>("the server is at capacity: {} requests are already waiting", queued);
    }
    incoming_.push_back(std::move(request));
  }
  wake_.notify_one();
  return stream;
}

void Engine::stop_accepting() {
  std::lock_guard lock(mutex_);
  accepting_ = false;
}

void Engine::shutdown(bool drain) {
  {
    std::lock_guard lock(mutex_);
    accepting_ = false;
    if (!stop_) drain_ = drain;
    if (!drain) drain_ = false;
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable() && std::this_thread::get_id() != thread_.get_id()) thread_.join();
}

EngineSnapshot Engine::snapshot() const {
  std::lock_guard lock(mutex_);
  return snapshot_;
}

void Engine::publish_snapshot() {
  std::lock_guard lock(mutex_);
  snapshot_.num_running = static_cast<int64_t>(scheduler_.num_running());
  snapshot_.num_waiting = static_cast<int64_t>(scheduler_.num_waiting());
  snapshot_.kv_blocks_total = kv_.capacity_blocks();
  snapshot_.kv_blocks_used = kv_.used_blocks();
  snapshot_.num_preemptions = scheduler_.num_preemptions();
  snapshot_.iterations = iterations_;
  snapshot_.heap_releases = heap_releases_;
  snapshot_.block_size = config_.block_size;
}

void Engine::run() {
  while (true) {
    bool stopping = false;
    bool drain = true;
    {
      std::unique_lock lock(mutex_);
      const auto has_work = [&] { return stop_ || !incoming_.empty() || !active_.empty(); };
      if (config_.hook && config_.hook->wants_idle_ticks()) {
        wake_.wait_for(lock, config_.idle_tick, has_work);
      } else if (heap_to_release_) {
        wake_.wait_until(lock, last_busy_ + config_.release_heap_after_idle, has_work);
      } else {
        wake_.wait(lock, has_work);
      }
      stopping = stop_;
      drain = drain_;
    }
    admit_new_requests();
    if (stopping && !drain) {
      for (auto& [id, request] : active_) request->stream->cancel();
    }
    expire_queued();
    reap_cancelled();
    if (stopping && active_.empty()) break;
    run_hook();
    if (!active_.empty()) {
      step();
      last_busy_ = Clock::now();
      heap_to_release_ = config_.release_heap_after_idle.count() > 0;
    } else if (heap_to_release_ && Clock::now() - last_busy_ >= config_.release_heap_after_idle) {
      heap_to_release_ = false;
      release_free_heap_memory();
      ++heap_releases_;
    }
    publish_snapshot();
  }
  if (config_.hook) config_.hook->detach(kv_, *runner_);
  publish_snapshot();
}

PressureSignals Engine::pressure_signals() {
  PressureSignals s;
  const auto now = Clock::now();
  s.now_seconds = std::chrono::duration<double>(now.time_since_epoch()).count();
  s.iteration = iterations_;
  s.kv_blocks_total = kv_.capacity_blocks();
  s.kv_blocks_used = kv_.used_blocks();
  s.kv_blocks_free = kv_.free_blocks();
  s.blocks_needed_by_waiting = scheduler_.blocks_needed_by_waiting();
  s.num_waiting = static_cast<int64_t>(scheduler_.num_waiting());
  s.num_running = static_cast<int64_t>(scheduler_.num_running());
  for (const Sequence* seq : scheduler_.waiting()) {
    s.oldest_wait_seconds = std::max(s.oldest_wait_seconds, seconds_between(active_.at(seq->id)->arrival, now));
  }
  s.preemptions_total = scheduler_.num_preemptions();
  s.ttft_count = std::exchange(ttft_count_, 0);
  s.ttft_max_seconds = std::exchange(ttft_max_seconds_, 0.0);
  return s;
}

void Engine::run_hook() {
  if (!config_.hook) return;
  try {
    config_.hook->at_iteration_boundary(pressure_signals(), kv_, *runner_);
  } catch (const std::exception& e) {
    // A failed morph action leaves the engine serving at its current precision; the hook
    // reports the failure itself (log, /morph).
    spdlog::error("morphing step failed: {}", e.what());
  }
}

void Engine::admit_new_requests() {
  std::deque<std::unique_ptr<ActiveRequest>> arrivals;
  {
    std::lock_guard lock(mutex_);
    arrivals.swap(incoming_);
  }
  for (auto& request : arrivals) {
    ActiveRequest& r = *request;
    scheduler_.add(&r.seq);
    metrics_.prompt_tokens += static_cast<uint64_t>(r.seq.num_prompt_tokens);
    active_.emplace(r.seq.id, std::move(request));
  }
}

void Engine::expire_queued() {
  if (config_.queue_timeout <= std::chrono::milliseconds::zero()) return;
  const auto now = Clock::now();
  std::vector<ActiveRequest*> expired;  // collected first: finishing one edits the waiting queue
  for (const Sequence* seq : scheduler_.waiting()) {
    ActiveRequest& r = *active_.at(seq->id);
    // Only requests never scheduled: one preempted back into the queue was admitted and stays.
    if (!r.scheduled_once && !r.finished && now - r.arrival > config_.queue_timeout) expired.push_back(&r);
  }
  for (ActiveRequest* r : expired) {
    finish(*r, FinishReason::QueueTimeout,
           fmt::format("the request waited {:.1f} s in the queue without being scheduled (the queue timeout is {:.1f} s)",
                       seconds_between(r->arrival, now),
                       std::chrono::duration<double>(config_.queue_timeout).count()));
  }
}

void Engine::reap_cancelled() {
  for (auto& [id, request] : active_) {
    if (!request->finished && request->stream->cancel_requested()) finish(*request, FinishReason::Cancelled);
  }
  remove_finished();
}

void Engine::remove_finished() {
  std::erase_if(active_, [](const auto& entry) { return entry.second->finished; });
}

void Engine::step() {
  const SchedulerOutput out = scheduler_.schedule();
  metrics_.num_preemptions += out.preempted.size();
  if (out.empty()) {
    // Nothing fits right now (every request was checked to fit alone, so this only lasts until
    // running requests finish); avoid spinning.
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, std::chrono::milliseconds(1));
    return;
  }
  std::vector<BatchSequence> batch;
  batch.reserve(out.chunks.size());
  const auto now = Clock::now();
  for (const ScheduledChunk& chunk : out.chunks) {
    ActiveRequest& r = *active_.at(chunk.seq->id);
    if (!r.scheduled_once) {
      r.scheduled_once = true;
      metrics_.request_queue_time_seconds.observe(seconds_between(r.arrival, now));
    }
    batch.push_back(BatchSequence{std::span(chunk.seq->tokens).subspan(static_cast<size_t>(chunk.first_pos),
                                                                        static_cast<size_t>(chunk.n_tokens)),
                                  chunk.first_pos, &chunk.seq->kv.blocks, false});
  }
  std::span<const float> logits;
  try {
    logits = runner_->forward(batch);
  } catch (const std::exception& e) {
    spdlog::error("forward pass failed: {}", e.what());
    for (const ScheduledChunk& chunk : out.chunks) finish(*active_.at(chunk.seq->id), FinishReason::Error, e.what());
    return;
  }
  ++iterations_;
  scheduler_.on_step_done(out);
  const auto vocab = static_cast<size_t>(model_.config.vocab_size);
  for (size_t i = 0; i < out.chunks.size(); ++i) {
    if (!out.chunks[i].samples_next_token) continue;
    ActiveRequest& r = *active_.at(out.chunks[i].seq->id);
    if (r.finished) continue;
    emit_token(r, logits.subspan(i * vocab, vocab));
  }
  remove_finished();
}

void Engine::emit_token(ActiveRequest& r, std::span<const float> logits) {
  GeneratedToken generated = r.sampler.next(logits);
  const int32_t token = generated.token;
  r.seq.tokens.push_back(token);
  ++metrics_.generation_tokens;
  const auto now = Clock::now();
  if (r.seq.num_generated() == 1) {
    r.first_token = now;
    const double ttft = seconds_between(r.arrival, now);
    metrics_.time_to_first_token_seconds.observe(ttft);
    ++ttft_count_;
    ttft_max_seconds_ = std::max(ttft_max_seconds_, ttft);
  } else {
    metrics_.inter_token_latency_seconds.observe(seconds_between(r.last_token, now));
  }
  r.last_token = now;

  OutputProcessor::Released released = r.output.push(token, r.seq.num_generated());
  RequestOutput update;
  update.prompt_tokens = r.seq.num_prompt_tokens;
  update.completion_tokens = r.seq.num_generated();
  update.tokens.push_back(std::move(generated));
  update.text = std::move(released.text);
  r.stream->push(std::move(update));
  if (released.finish) finish(r, *released.finish);
}

void Engine::finish(ActiveRequest& r, FinishReason reason, const std::string& error) {
  if (r.finished) return;
  r.finished = true;
  scheduler_.finish(&r.seq);
  RequestOutput last;
  last.finish = reason;
  last.error = error;
  last.prompt_tokens = r.seq.num_prompt_tokens;
  last.completion_tokens = r.seq.num_generated();
  // Metrics first: a client that scrapes /metrics right after its last update must see itself.
  ++metrics_.request_success[static_cast<size_t>(reason)];
  metrics_.e2e_request_latency_seconds.observe(seconds_between(r.arrival, Clock::now()));
  r.stream->push(std::move(last));
}

}  // namespace morphserve
