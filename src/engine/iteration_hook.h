#pragma once
// The seam between the engine thread and the morphing subsystem (DESIGN.md §3, §5): the engine
// calls a hook at every iteration boundary, between forward passes, with the pressure signals of
// the moment, and lends it the KV pool and the runner, the only times anybody but the engine
// thread's own step touches them. morph/ implements it; engine/ never includes morph/.
#include <cstdint>

namespace morphserve {

class KvBlockPool;
class LlamaRunner;

// Raw, unsmoothed readings taken just before the scheduler runs. The hook smooths them itself.
struct PressureSignals {
  double now_seconds = 0.0;           // steady clock
  int64_t iteration = 0;              // forward passes so far
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_used = 0;
  int64_t kv_blocks_free = 0;         // allocatable now (draining segments excluded)
  int64_t blocks_needed_by_waiting = 0;
  int64_t num_waiting = 0;
  int64_t num_running = 0;
  double oldest_wait_seconds = 0.0;   // the longest any waiting request has queued
  int64_t preemptions_total = 0;
  int64_t ttft_count = 0;             // first tokens since the previous boundary
  double ttft_max_seconds = 0.0;      // the slowest of them (0 when none)
};

class IterationHook {
 public:
  virtual ~IterationHook() = default;
  // Once, on the engine's constructing thread, before the engine thread starts: the hook may
  // repoint layers (runner.set_layer) and attach KV segments.
  virtual void attach(KvBlockPool& kv, LlamaRunner& runner) = 0;
  // Engine thread, between forward passes; also every idle tick while wants_idle_ticks().
  virtual void at_iteration_boundary(const PressureSignals& signals, KvBlockPool& kv, LlamaRunner& runner) = 0;
  // True while the hook has work that must progress with no requests running (a copy in
  // flight, layers waiting to be restored after the burst).
  virtual bool wants_idle_ticks() const = 0;
  // Engine thread, once, after its last iteration: wait for any worker it started.
  virtual void detach(KvBlockPool& kv, LlamaRunner& runner) = 0;
};

}  // namespace morphserve
