#pragma once
// The engine: one thread that owns the scheduler, the KV pool and the runner and runs one
// iteration at a time (schedule -> forward -> sample -> stream). Other threads only submit
// requests, cancel them, and read snapshots (DESIGN.md §3).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "core/error.h"
#include "engine/engine_metrics.h"
#include "engine/iteration_hook.h"
#include "engine/kv_block_pool.h"
#include "engine/request.h"
#include "engine/request_stream.h"
#include "engine/scheduler.h"
#include "model/llama_weights.h"

namespace morphserve {

class LlamaRunner;

// The waiting queue is full (HTTP 429) or the engine is shutting down (HTTP 503).
class QueueFull : public Error {
 public:
  using Error::Error;
};
class ShuttingDown : public Error {
 public:
  using Error::Error;
};

// A request too long for the engine, or holding a token id outside the vocabulary. Engine::submit
// is the one place these limits are checked: the server maps this to its 400 (vLLM's wording,
// which parameter), and the scheduler and runner below trust what was admitted.
class RequestRejected : public InvalidArgument {
 public:
  enum class Reason {
    PromptTooLong,           // the prompt alone leaves no room for a generated token
    CompletionTooLong,       // prompt + max_tokens over the limit
    TokenOutsideVocabulary,  // `token` is not an id of the model's vocabulary (`limit`)
  };
  RequestRejected(Reason reason, const std::string& message, int64_t prompt_tokens, int64_t max_tokens, int64_t limit,
                  int64_t token = 0)
      : InvalidArgument(message),
        reason(reason),
        prompt_tokens(prompt_tokens),
        max_tokens(max_tokens),
        limit(limit),
        token(token) {}

  Reason reason;
  int64_t prompt_tokens;
  int64_t max_tokens;
  int64_t limit;  // tokens per request, or the vocabulary size
  int64_t token;
};

struct EngineConfig {
  SchedulerConfig scheduler;
  int block_size = 16;
  DType kv_type = DType::F16;
  int64_t kv_blocks = 0;     // capacity of the KV pool
  size_t max_queue = 1024;   // waiting requests beyond this are refused
  int64_t max_model_len = 0;  // prompt + completion tokens a request may take (0: the model's context)
  // A request still waiting to be scheduled for the first time after this long is dropped
  // (FinishReason::QueueTimeout), so its client can retry elsewhere. Zero: wait forever. A request
  // preempted back into the queue was admitted once and is never dropped.
  std::chrono::milliseconds queue_timeout{0};
  // Called at every iteration boundary (morphing); not owned, must outlive the engine.
  IterationHook* hook = nullptr;
  // How often an idle engine wakes while the hook wants ticks.
  std::chrono::milliseconds idle_tick{20};
  // After work, once the engine has been idle this long it returns the allocator's free memory
  // to the system (release_free_heap_memory), so what a burst left free does not stay resident.
  // Zero: never.
  std::chrono::milliseconds release_heap_after_idle{1000};
};

// What other threads may read about the engine at any time.
struct EngineSnapshot {
  int64_t num_running = 0;
  int64_t num_waiting = 0;
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_used = 0;
  int64_t num_preemptions = 0;
  int64_t iterations = 0;
  int64_t heap_releases = 0;  // idle spells after work that returned free heap memory to the system
  int block_size = 0;         // tokens per KV block (0 before the engine exists)
};

class Engine {
 public:
  // Starts the engine thread. The KV pool's base and the runner's workspace are allocated from
  // `backend` (OutOfBudget when they do not fit), and every forward pass runs on it. The model
  // and the backend must outlive the engine.
  Engine(const LlamaModel& model, const EngineConfig& config, Backend& backend);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Validates and queues a request. Throws RequestRejected (too long for max_tokens_per_request(),
  // a token id outside the vocabulary), InvalidArgument (other bad parameters), QueueFull, or
  // ShuttingDown.
  std::shared_ptr<RequestStream> submit(RequestParams params);

  // Refuses new requests from now on (submit throws ShuttingDown); in-flight ones continue.
  void stop_accepting();
  // Stops accepting requests; with drain, lets in-flight requests finish, otherwise cancels
  // them; then stops the thread. Idempotent.
  void shutdown(bool drain);

  EngineSnapshot snapshot() const;
  const EngineMetrics& metrics() const { return metrics_; }
  const LlamaModel& model() const { return model_; }
  std::chrono::milliseconds queue_timeout() const { return config_.queue_timeout; }
  // Context length bound for prompt + completion: the model's context, max_model_len and the base
  // KV pool (the capacity a morphing engine returns to when the burst passes).
  int64_t max_tokens_per_request() const;

 private:
  struct ActiveRequest;
  void run();
  void admit_new_requests();
  void expire_queued();
  void reap_cancelled();
  void step();
  void emit_token(ActiveRequest& request, std::span<const float> logits);
  // Drops the finished requests from active_: the one place they leave it.
  void remove_finished();
  void finish(ActiveRequest& request, FinishReason reason, const std::string& error = "");
  void publish_snapshot();
  PressureSignals pressure_signals();
  void run_hook();

  const LlamaModel& model_;
  EngineConfig config_;
  Backend& backend_;
  KvBlockPool kv_;
  std::unique_ptr<LlamaRunner> runner_;
  Scheduler scheduler_;
  EngineMetrics metrics_;

  mutable std::mutex mutex_;  // guards incoming_, accepting_, snapshot_
  std::condition_variable wake_;
  std::deque<std::unique_ptr<ActiveRequest>> incoming_;
  bool accepting_ = true;
  bool drain_ = true;
  bool stop_ = false;
  EngineSnapshot snapshot_;
  std::atomic<uint64_t> next_id_{1};

  std::unordered_map<uint64_t, std::unique_ptr<ActiveRequest>> active_;  // engine thread only
  int64_t iterations_ = 0;
  bool heap_to_release_ = false;      // work ran since the last release (engine thread)
  int64_t heap_releases_ = 0;
  std::chrono::steady_clock::time_point last_busy_;  // end of the last iteration that had work
  int64_t base_kv_blocks_ = 0;       // capacity at start, before any morphing
  int64_t ttft_count_ = 0;           // first tokens since the last hook call (engine thread)
  double ttft_max_seconds_ = 0.0;
  std::thread thread_;
};

}  // namespace morphserve
