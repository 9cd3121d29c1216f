#include "engine/request_stream.h"

namespace morphserve {

bool RequestStream::next(RequestOutput& out, std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  if (!ready_.wait_until(lock, deadline, [&] { return !updates_.empty() || closed_; })) return false;
  if (updates_.empty()) return false;  // closed and drained
  out = std::move(updates_.front());
  updates_.pop_front();
  return true;
}

bool RequestStream::finished() const {
  std::lock_guard lock(mutex_);
  return closed_ && updates_.empty();
}

void RequestStream::set_waker(std::shared_ptr<StreamWaker> waker) {
  std::lock_guard lock(mutex_);
  waker_ = std::move(waker);
}

void RequestStream::push(RequestOutput update) {
  std::shared_ptr<StreamWaker> waker;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    if (update.finish) closed_ = true;
    updates_.push_back(std::move(update));
    waker = waker_;
  }
  ready_.notify_all();
  if (waker) waker->notify();
}

uint64_t StreamWaker::count() const {
  std::lock_guard lock(mutex_);
  return count_;
}

bool StreamWaker::wait_past(uint64_t seen, std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  return changed_.wait_until(lock, deadline, [&] { return count_ != seen; });
}

void StreamWaker::notify() {
  {
    std::lock_guard lock(mutex_);
    ++count_;
  }
  changed_.notify_all();
}

}  // namespace morphserve
