#pragma once
// The n engine requests behind one API request (OpenAI's `n`), read as one stream of updates.
// Destroying a job cancels whatever is still running, so a handler that returns early (an error,
// a client that went away) never leaves work or KV blocks behind in the engine.
#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "engine/request.h"
#include "engine/request_stream.h"

namespace morphserve {
class Engine;
}

namespace morphserve::server {

struct ChoiceUpdate {
  int index = 0;
  RequestOutput output;
};

class GenerationJob {
 public:
  // Submits n requests; with a seed, choice i uses seed + i so the choices differ but each is
  // reproducible. If a submission throws (QueueFull, ShuttingDown, InvalidArgument), the ones
  // already submitted are cancelled and the exception propagates.
  GenerationJob(Engine& engine, const RequestParams& params, int n);
  ~GenerationJob();
  GenerationJob(const GenerationJob&) = delete;
  GenerationJob& operator=(const GenerationJob&) = delete;

  int size() const { return static_cast<int>(streams_.size()); }
  // The next update of any choice, waiting at most `wait`; nullopt on timeout or once finished.
  std::optional<ChoiceUpdate> next(std::chrono::milliseconds wait);
  bool finished() const;
  void cancel();

 private:
  std::vector<std::shared_ptr<RequestStream>> streams_;
  std::shared_ptr<StreamWaker> waker_ = std::make_shared<StreamWaker>();  // every choice's pushes wake next()
  std::vector<bool> done_;
  size_t cursor_ = 0;  // round-robin start, so no choice starves the others
};

}  // namespace morphserve::server
