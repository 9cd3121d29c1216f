#pragma once
// The channel between the engine thread (producer) and the HTTP thread serving one request
// (consumer). Cancellation flows the other way: any thread may cancel, and the engine frees the
// request's blocks at its next iteration.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>

#include "engine/request.h"

namespace morphserve {

// Lets one consumer wait on several streams at once (a request with n > 1 choices): every update
// pushed to a stream it is attached to counts up and wakes the waiter.
class StreamWaker {
 public:
  uint64_t count() const;
  // Waits until the count is no longer `seen` or the deadline passes; false on timeout. Read the
  // count before looking at the streams, so an update pushed after the look always wakes this.
  bool wait_past(uint64_t seen, std::chrono::steady_clock::time_point deadline);
  void notify();

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  uint64_t count_ = 0;
};

class RequestStream {
 public:
  explicit RequestStream(uint64_t id) : id_(id) {}

  uint64_t id() const { return id_; }

  // Consumer: waits until an update arrives or the deadline passes. Returns false on timeout or
  // when the stream has finished and every update was taken.
  bool next(RequestOutput& out, std::chrono::steady_clock::time_point deadline);
  bool finished() const;
  // Consumer: from now on every push also notifies `waker` (updates pushed before are in the
  // queue already).
  void set_waker(std::shared_ptr<StreamWaker> waker);

  // Any thread: asks the engine to stop this request. Idempotent.
  void cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancel_requested() const { return cancelled_.load(std::memory_order_relaxed); }

  // Producer (engine thread).
  void push(RequestOutput update);

 private:
  const uint64_t id_;
  std::atomic<bool> cancelled_{false};
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<RequestOutput> updates_;
  bool closed_ = false;  // the final update was pushed
  std::shared_ptr<StreamWaker> waker_;
};

}  // namespace morphserve
