#pragma once
// What every handler shares: the phase of the server's life (loading, ready, shutting down), the
// model once it is served, and the count of requests in flight that shutdown waits for.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "server/chat_template.h"

namespace morphserve {
class Engine;
class MorphStatusSource;
struct LlamaModel;
}  // namespace morphserve

namespace morphserve::server {

struct ServingModel {
  Engine* engine = nullptr;
  const LlamaModel* model = nullptr;
  ChatTemplate chat_template;
  int64_t max_model_len = 0;  // prompt + completion tokens of one request
  const MorphStatusSource* morph = nullptr;  // /morph and the morphing metrics; null: not shown
};

enum class ServerPhase { Loading, Ready, ShuttingDown };

// The names a client may put in `model`, as vLLM's --served-model-name has them: the listed ones
// appear in /v1/models and the first names the model in responses and metrics; aliases are
// accepted without being listed (the -m path, when the default name is the file's stem).
struct ServedModelNames {
  std::vector<std::string> listed;  // at least one
  std::vector<std::string> aliases;
};

// Names for the model loaded from `source` (the -m value) when --served-model-name is not given:
// a file's stem ("models/stories260K.gguf" -> "stories260K") or a checkpoint folder's name, with
// `source` itself accepted too; dummy:SHAPE specs as they are.
ServedModelNames default_served_model_names(const std::string& source);

class ServerState {
 public:
  // Throws InvalidArgument when no name is listed or a name is empty.
  explicit ServerState(ServedModelNames names);

  const std::string& served_model_name() const { return names_.listed.front(); }
  const std::vector<std::string>& listed_model_names() const { return names_.listed; }
  // Whether `model` names this server's model (a listed name or an alias).
  bool serves_model(const std::string& model) const;
  ServerPhase phase() const { return phase_.load(std::memory_order_acquire); }

  // From Loading to Ready (ignored once shutting down). The model and engine must stay valid
  // until the HTTP server has stopped.
  void set_ready(ServingModel model);
  // New requests get 503 from now on; requests in flight continue.
  void begin_shutdown() { phase_.store(ServerPhase::ShuttingDown, std::memory_order_release); }
  // The grace period is over: handlers cancel their requests and end their responses.
  void abort_in_flight() { aborting_.store(true, std::memory_order_release); }
  bool aborting() const { return aborting_.load(std::memory_order_acquire); }

  // The served model, or a 503 ApiError while loading or shutting down.
  const ServingModel& require_ready() const;
  // The served model once it was set (also while shutting down), else null.
  const ServingModel* model() const { return has_model_.load(std::memory_order_acquire) ? &model_ : nullptr; }

  // A generation request being served; shutdown waits for these.
  class InFlight {
   public:
    explicit InFlight(ServerState& state);
    ~InFlight();
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;

   private:
    ServerState& state_;
  };
  int64_t in_flight() const;
  // True when no request is in flight before the timeout.
  bool wait_idle(std::chrono::milliseconds timeout);

 private:
  const ServedModelNames names_;
  std::atomic<ServerPhase> phase_{ServerPhase::Loading};
  std::atomic<bool> aborting_{false};
  std::atomic<bool> has_model_{false};
  ServingModel model_;  // written once, before has_model_

  mutable std::mutex mutex_;
  std::condition_variable idle_;
  int64_t in_flight_ = 0;
};

}  // namespace morphserve::server
