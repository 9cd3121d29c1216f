#include "morph/layer_swapper.h"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

#include "core/error.h"
#include "core/units.h"
#include "engine/kv_block_pool.h"
#include "engine/llama_runner.h"

namespace morphserve {

using Clock = std::chrono::steady_clock;

std::string_view swap_direction_name(SwapDirection direction) {
  return direction == SwapDirection::Down ? "down" : "up";
}

namespace {

size_t largest_quantized_packing(const ReplicaStore& store) {
  size_t largest = 0;
  for (int l = 0; l < store.n_layers(); ++l) {
    const auto& ladder = store.ladder(l);
    for (size_t r = 1; r < ladder.size(); ++r) {
      largest = std::max(largest, PackedLayer::of(store.replica(l, ladder[r])).bytes);
    }
  }
  return largest;
}

}  // namespace

size_t LayerSwapper::region_bytes_for(const ReplicaStore& store) {
  size_t total = 0;
  for (int l = 0; l < store.n_layers(); ++l) total += PackedLayer::of(store.replica(l, store.full_precision(l))).bytes;
  return total;
}

size_t LayerSwapper::staging_bytes_for(const ReplicaStore& store, int staging_slots) {
  return largest_quantized_packing(store) * static_cast<size_t>(std::max(staging_slots, 0));
}

LayerSwapper::LayerSwapper(const ReplicaStore& store, int staging_slots, Backend& backend)
    : store_(store), backend_(backend) {
  if (staging_slots < 1) fail<InvalidArgument>("at least one swap must be allowed in flight, got {}", staging_slots);
  region_total_ = region_bytes_for(store);
  layers_.resize(static_cast<size_t>(store.n_layers()));
  for (int l = 0; l < store.n_layers(); ++l) layers_[static_cast<size_t>(l)].precision = store.full_precision(l);
  const size_t slot_bytes = largest_quantized_packing(store);
  for (int s = 0; s < staging_slots; ++s) slots_.push_back(backend_.allocate(kStagingAccount, slot_bytes));
  slot_busy_.assign(slots_.size(), false);
}

LayerSwapper::~LayerSwapper() {
  backend_.wait_idle();  // no copy may still write into a region or slot freed below
  // Whatever is still lent to the pool comes back with the regions (the pool is gone or about to
  // be); then each buffer gives its bytes back to its account. The ledger's checks cannot fail
  // here unless it was corrupted elsewhere; a destructor must not throw either way.
  try {
    backend_.reassign(kLentAccount, kRegionAccount, backend_.budget().held(kLentAccount));
  } catch (const std::exception&) {
  }
}

PackedLayer LayerSwapper::packing(int layer, DType precision) const {
  return PackedLayer::of(store_.replica(layer, precision));
}

LayerLinears LayerSwapper::region_views(int layer, DType precision) const {
  const LayerLinears& like = store_.replica(layer, precision);
  return packing(layer, precision).views_at(layers_[static_cast<size_t>(layer)].region.data(), like);
}

LayerLinears LayerSwapper::slot_views(int slot, int layer, DType precision) const {
  const LayerLinears& like = store_.replica(layer, precision);
  return packing(layer, precision).views_at(slots_[static_cast<size_t>(slot)].data(), like);
}

void LayerSwapper::take_weights(LlamaModel& model) {
  if (weights_taken_) return;
  if (static_cast<int>(model.weights.layers.size()) != n_layers()) {
    fail<InvalidArgument>("the replica store has {} layers, the model {}", n_layers(), model.weights.layers.size());
  }
  // Everything is checked before anything moves, so a refusal leaves the model whole.
  const MemoryBudget& budget = backend_.budget();
  size_t held = budget.used();
  size_t peak = held;
  for (int l = 0; l < n_layers(); ++l) {
    const LayerWeights& weights = model.weights.layers[static_cast<size_t>(l)];
    const LayerLinears current = LayerLinears::of(weights);
    const LayerLinears& full = store_.replica(l, store_.full_precision(l));
    if (!current.same_shapes(full) || current.precision() != full.precision()) {
      fail<InvalidArgument>("layer {} of the model is not at the full precision of its replicas ({}); load it "
                            "unconverted to morph it", l, dtype_name(full.precision()));
    }
    held += packing(l, store_.full_precision(l)).bytes;
    peak = std::max(peak, held);
    for (const WeightMatrix* m : weights.linears()) {
      if (m->data.ledger() == &budget) held -= m->bytes();
    }
  }
  if (peak > budget.budget()) {
    fail<OutOfBudget>("moving the layers into their regions ({} in all, one layer at a time) needs {} at the peak, "
                      "more than the memory budget of {} ({})", format_size(region_total_), format_size(peak),
                      format_size(budget.budget()), budget.describe());
  }
  for (int l = 0; l < n_layers(); ++l) {
    LayerWeights& weights = model.weights.layers[static_cast<size_t>(l)];
    const LayerLinears current = LayerLinears::of(weights);
    const PackedLayer packed = packing(l, store_.full_precision(l));
    ResidentBuffer& region = layers_[static_cast<size_t>(l)].region;
    region = backend_.allocate(kRegionAccount, packed.bytes);
    for (size_t i = 0; i < LayerLinears::kCount; ++i) {
      backend_.copy_within_now(region.data() + packed.offsets[i], current.m[i].data, current.m[i].bytes());
    }
    for (WeightMatrix* m : weights.linears()) m->data = ResidentBuffer();
  }
  weights_taken_ = true;
}

void LayerSwapper::attach(LlamaModel& model, LlamaRunner& runner) {
  take_weights(model);
  for (int l = 0; l < n_layers(); ++l) runner.set_layer(l, region_views(l, store_.full_precision(l)));
}

DType LayerSwapper::precision(int layer) const { return layers_.at(static_cast<size_t>(layer)).precision; }
bool LayerSwapper::busy(int layer) const { return layers_.at(static_cast<size_t>(layer)).op.has_value(); }

int LayerSwapper::in_flight() const {
  return static_cast<int>(std::count_if(layers_.begin(), layers_.end(), [](const Layer& l) { return l.op.has_value(); }));
}

int LayerSwapper::free_slots() const { return static_cast<int>(std::count(slot_busy_.begin(), slot_busy_.end(), false)); }

bool LayerSwapper::start(int l, DType target, KvBlockPool& kv) {
  if (l < 0 || l >= n_layers()) fail<InvalidArgument>("layer {} is outside the model's {} layers", l, n_layers());
  const auto& rungs = ladder(l);
  const auto target_rung = std::find(rungs.begin(), rungs.end(), target);
  if (target_rung == rungs.end()) {
    fail<InvalidArgument>("layer {} has no {} replica", l, dtype_name(target));
  }
  Layer& layer = layers_[static_cast<size_t>(l)];
  if (layer.op || layer.precision == target) return false;
  // A file that changed under us must not be copied from: the layer stays where it is.
  if (std::string why = store_.source_problem(l, target); !why.empty()) {
    fail<ModelFileError>("layer {} cannot move to {}: {}", l, dtype_name(target), why);
  }
  const auto slot_it = std::find(slot_busy_.begin(), slot_busy_.end(), false);
  if (slot_it == slot_busy_.end()) return false;
  const int slot = static_cast<int>(slot_it - slot_busy_.begin());
  *slot_it = true;

  Operation op;
  op.from = layer.precision;
  op.to = target;
  op.direction = target_rung > std::find(rungs.begin(), rungs.end(), layer.precision) ? SwapDirection::Down
                                                                                         : SwapDirection::Up;
  op.steps = op.direction == SwapDirection::Down ? std::span<const Step>(kDownSteps) : std::span<const Step>(kUpSteps);
  op.slot = slot;
  op.started = Clock::now();
  op.capacity_before = kv.capacity_blocks();
  if (op.direction == SwapDirection::Up) {
    // The segments overlapping the bigger weights' place must empty first.
    const size_t needed = packing(l, target).bytes;
    for (const RegionSegment& s : layer.segments) {
      if (s.offset < needed) {
        kv.stop_allocating(s.segment);
        op.draining.push_back(s.segment);
      }
    }
  }
  layer.op = std::move(op);
  // Both swaps begin with a copy into the slot: it starts now, the flips wait for advance().
  std::byte* slot_data = slots_[static_cast<size_t>(slot)].data();
  if (layer.op->direction == SwapDirection::Down) {
    const PackedLayer to = packing(l, target);
    const ReplicaStore* store = &store_;
    layer.op->copy = backend_.copy_in(slot_data, to.bytes,
                                      [store, l, target, to](std::byte* host) { store->copy_to(l, target, to, host); });
  } else {
    layer.op->copy = backend_.copy_within(slot_data, layer.region.data(), packing(l, layer.precision).bytes);
  }
  return true;
}

bool LayerSwapper::abort_restore(int l, KvBlockPool& kv, LlamaRunner& runner) {
  Layer& layer = layers_.at(static_cast<size_t>(l));
  if (!layer.op || layer.op->direction != SwapDirection::Up || layer.op->region_copy_started()) return false;
  Operation& op = *layer.op;
  if (op.current() == Step::CopyRegionToSlot && !op.copy.done()) return false;  // the slot is still being written
  if (op.copy.valid()) op.copy.get();
  for (int segment : op.draining) kv.resume_allocating(segment);
  if (layer.on_slot >= 0) {
    runner.set_layer(l, region_views(l, layer.precision));  // the region still holds these weights
    layer.on_slot = -1;
  }
  slot_busy_[static_cast<size_t>(op.slot)] = false;
  layer.op.reset();
  lend_free_tail(l, kv);  // segments already detached come back
  return true;
}

std::vector<SwapRecord> LayerSwapper::advance(KvBlockPool& kv, LlamaRunner& runner) {
  std::vector<SwapRecord> finished;
  for (int l = 0; l < n_layers(); ++l) {
    Layer& layer = layers_[static_cast<size_t>(l)];
    if (!layer.op) continue;
    SwapRecord failed;
    failed.layer = l;
    failed.from = layer.op->from;
    failed.to = layer.op->to;
    failed.direction = layer.op->direction;
    try {
      if (run_steps(l, kv, runner)) finished.push_back(finish(l, kv));
    } catch (const std::exception& e) {
      if (layer.op) throw;  // not a failure the swap recovered from: a bug, not a file problem
      failed.error = e.what();
      failed.source_changed = dynamic_cast<const ModelFileError*>(&e) != nullptr;
      finished.push_back(std::move(failed));
    }
  }
  return finished;
}

bool LayerSwapper::run_steps(int l, KvBlockPool& kv, LlamaRunner& runner) {
  Layer& layer = layers_[static_cast<size_t>(l)];
  Operation& op = *layer.op;
  if (!op.draining.empty()) drain(l, kv);
  for (; op.step < op.steps.size(); ++op.step) {
    switch (op.current()) {
      case Step::CopyReplicaToSlot:
      case Step::CopyRegionToSlot:
      case Step::CopyReplicaToRegion:
      case Step::CopySlotToRegion:
        if (!op.copy.valid()) {
          submit_copy(l, kv, runner);
          return false;
        }
        if (!op.copy.done()) return false;
        collect_copy(l, kv, runner);
        break;
      case Step::FlipToSlot:
        // The weights in the region were last read by the pass that just ended: from now on the
        // runner reads the slot (the new weights going down, the same ones going up), and the
        // region may be overwritten.
        runner.set_layer(l, slot_views(op.slot, l, op.direction == SwapDirection::Down ? op.to : op.from));
        layer.on_slot = op.slot;
        if (op.direction == SwapDirection::Down) layer.precision = op.to;
        break;
      case Step::Drain:
        if (!op.draining.empty()) return false;  // no room elsewhere yet: wait, never drop or preempt for a restore
        break;
      case Step::FlipToRegion:
        runner.set_layer(l, region_views(l, op.to));
        layer.on_slot = -1;
        layer.precision = op.to;
        lend_free_tail(l, kv);
        break;
    }
  }
  return true;
}

void LayerSwapper::submit_copy(int l, KvBlockPool& kv, LlamaRunner& runner) {
  Layer& layer = layers_[static_cast<size_t>(l)];
  Operation& op = *layer.op;
  std::byte* slot_data = slots_[static_cast<size_t>(op.slot)].data();
  std::byte* region = layer.region.data();
  const ReplicaStore* store = &store_;
  const DType target = op.to;
  const PackedLayer to = packing(l, op.to);
  switch (op.current()) {
    case Step::CopyReplicaToRegion:
      // Last moment to give up cleanly: the region still holds the weights the slot has.
      if (std::string why = store_.source_problem(l, op.to); !why.empty()) {
        abort_restore(l, kv, runner);
        fail<ModelFileError>("layer {} cannot return to {}: {}", l, dtype_name(target), why);
      }
      op.copy = backend_.copy_in(region, to.bytes, [store, l, target, to](std::byte* host) { store->copy_to(l, target, to, host); });
      return;
    case Step::CopySlotToRegion:
      op.copy = backend_.copy_within(region, slot_data, to.bytes);
      return;
    case Step::CopyReplicaToSlot:
    case Step::CopyRegionToSlot:  // submitted by start()
    case Step::FlipToSlot:
    case Step::Drain:
    case Step::FlipToRegion:
      break;
  }
  throw std::logic_error(fmt::format("layer {}: step {} of its swap has no copy to submit", l, op.step));
}

void LayerSwapper::collect_copy(int l, KvBlockPool& kv, LlamaRunner& runner) {
  Layer& layer = layers_[static_cast<size_t>(l)];
  Operation& op = *layer.op;
  try {
    op.copy.get();
  } catch (...) {
    if (op.current() == Step::CopyReplicaToSlot) {
      // Nothing changed: the layer stays where it was.
      slot_busy_[static_cast<size_t>(op.slot)] = false;
      layer.op.reset();
    } else if (op.current() == Step::CopyReplicaToRegion) {
      recover_from_slot(l, kv, runner);
    }
    // A copy between resident ranges cannot fail: anything else leaves the swap set, and advance() treats it as a bug.
    throw;
  }
}

void LayerSwapper::drain(int l, KvBlockPool& kv) {
  Operation& op = *layers_[static_cast<size_t>(l)].op;
  for (auto it = op.draining.begin(); it != op.draining.end();) {
    const int64_t before = kv.segment_used_blocks(*it);
    const int64_t left = before > 0 ? kv.migrate_segment(*it) : 0;
    op.blocks_migrated += before - left;
    if (left == 0) {
      detach_segment(l, *it, kv);
      it = op.draining.erase(it);
    } else {
      ++it;  // no room elsewhere yet: try again at the next boundary
    }
  }
}

void LayerSwapper::recover_from_slot(int l, KvBlockPool& kv, LlamaRunner& runner) {
  Layer& layer = layers_[static_cast<size_t>(l)];
  Operation& op = *layer.op;
  // The copy into the region failed part-way, while the runner read the slot. The slot still holds
  // the weights the layer runs at, so they go back to the region's start (a small, rare copy on
  // the engine thread) and the region's tail is lent again.
  const size_t bytes = packing(l, op.from).bytes;
  backend_.copy_within_now(layer.region.data(), slots_[static_cast<size_t>(op.slot)].data(), bytes);
  runner.set_layer(l, region_views(l, op.from));
  layer.on_slot = -1;
  slot_busy_[static_cast<size_t>(op.slot)] = false;
  layer.op.reset();
  lend_free_tail(l, kv);
}

SwapRecord LayerSwapper::finish(int l, const KvBlockPool& kv) {
  Layer& layer = layers_[static_cast<size_t>(l)];
  const Operation& op = *layer.op;
  SwapRecord record;
  record.layer = l;
  record.from = op.from;
  record.to = op.to;
  record.direction = op.direction;
  record.seconds = std::chrono::duration<double>(Clock::now() - op.started).count();
  record.blocks_migrated = op.blocks_migrated;
  record.kv_blocks_delta = kv.capacity_blocks() - op.capacity_before;
  slot_busy_[static_cast<size_t>(op.slot)] = false;
  layer.op.reset();
  return record;
}

void LayerSwapper::lend_free_tail(int l, KvBlockPool& kv) {
  Layer& layer = layers_[static_cast<size_t>(l)];
  const size_t start = packing(l, layer.precision).bytes;
  const size_t end = layer.segments.empty() ? layer.region.size() : layer.segments.front().offset;
  const size_t block_bytes = kv.layout().block_bytes();
  if (end <= start || end - start < block_bytes) return;  // region offsets are 64-aligned already
  const int segment = kv.add_segment(layer.region.data() + start, end - start);
  const size_t lent = static_cast<size_t>(kv.segment_blocks(segment)) * block_bytes;
  backend_.reassign(kRegionAccount, kLentAccount, lent);
  layer.segments.insert(layer.segments.begin(), RegionSegment{segment, start, end - start});
}

void LayerSwapper::detach_segment(int l, int segment, KvBlockPool& kv) {
  Layer& layer = layers_[static_cast<size_t>(l)];
  const size_t lent = static_cast<size_t>(kv.segment_blocks(segment)) * kv.layout().block_bytes();
  kv.remove_segment(segment);
  backend_.reassign(kLentAccount, kRegionAccount, lent);
  std::erase_if(layer.segments, [&](const RegionSegment& s) { return s.segment == segment; });
}

void LayerSwapper::wait_idle() { backend_.wait_idle(); }

LayerMorphState LayerSwapper::state(int l, const KvBlockPool& kv) const {
  const Layer& layer = layers_.at(static_cast<size_t>(l));
  LayerMorphState s;
  s.precision = layer.precision;
  s.on_staging = layer.on_slot >= 0;
  s.segments = layer.segments;
  s.region_bytes = layer.region.size();
  s.phase = "idle";
  if (layer.op) {
    s.heading_to = layer.op->to;
    const Operation& op = *layer.op;
    const bool on_slot_side = op.current() == Step::FlipToSlot || op.current() == Step::Drain;
    if (!op.draining.empty()) {
      s.phase = "draining";
    } else if (op.current() == Step::CopyReplicaToSlot || op.current() == Step::CopyRegionToSlot) {
      s.phase = "staging";
    } else {
      s.phase = on_slot_side ? "on staging" : "copying in";
    }
  }
  (void)kv;
  return s;
}

}  // namespace morphserve
