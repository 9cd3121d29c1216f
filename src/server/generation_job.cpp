#include "server/generation_job.h"

#include <algorithm>

#include "engine/engine.h"

namespace morphserve::server {

using Clock = std::chrono::steady_clock;

GenerationJob::GenerationJob(Engine& engine, const RequestParams& params, int n) {
  streams_.reserve(static_cast<size_t>(n));
  try {
    for (int i = 0; i < n; ++i) {
      RequestParams p = params;
      if (p.sampling.seed) p.sampling.seed = *p.sampling.seed + static_cast<uint64_t>(i);
      streams_.push_back(engine.submit(std::move(p)));
      streams_.back()->set_waker(waker_);
    }
  } catch (...) {
    cancel();
    throw;
  }
  done_.assign(streams_.size(), false);
}

GenerationJob::~GenerationJob() {
  for (size_t i = 0; i < streams_.size(); ++i) {
    if (!done_[i]) streams_[i]->cancel();
  }
}

void GenerationJob::cancel() {
  for (auto& s : streams_) s->cancel();
}

bool GenerationJob::finished() const { return std::all_of(done_.begin(), done_.end(), [](bool d) { return d; }); }

std::optional<ChoiceUpdate> GenerationJob::next(std::chrono::milliseconds wait) {
  const Clock::time_point deadline = Clock::now() + wait;
  const size_t n = streams_.size();
  for (;;) {
    const uint64_t seen = waker_->count();
    // Take whatever is ready, starting after the choice served last.
    bool any_open = false;
    for (size_t k = 0; k < n; ++k) {
      const size_t i = (cursor_ + k) % n;
      if (done_[i]) continue;
      RequestOutput out;
      if (streams_[i]->next(out, Clock::time_point::min())) {
        if (out.finish) done_[i] = true;
        cursor_ = (i + 1) % n;
        return ChoiceUpdate{static_cast<int>(i), std::move(out)};
      }
      if (streams_[i]->finished()) {
        done_[i] = true;  // closed without a final update: nothing more comes
      } else {
        any_open = true;
      }
    }
    if (!any_open) return std::nullopt;
    // Sleep until any choice gets an update (no polling, whatever n is).
    if (!waker_->wait_past(seen, deadline)) return std::nullopt;
  }
}

}  // namespace morphserve::server
