#pragma once
// Swaps decoder layers between the rungs of their precision ladder at run time, state-preserving
// (DESIGN.md §4). Each layer owns one resident region sized for its full-precision weights; the
// weights the runner uses sit at the region's start and whatever the current precision leaves
// free is lent to the KV pool as segments (a stack, by offset).
//
// The region is in use while the runner reads the old weights, so a copy never lands in it while
// they are live: every swap goes through a staging slot (resident, sized for the largest quantized
// packing, reserved in the budget):
//   down  L: P -> Q  copy replica Q to the slot (worker) | flip L to the slot | copy slot -> region
//                    start (worker) | flip L to the region, lend [size Q, size P) to the KV pool
//   up    L: Q -> P  stop allocating from the segments below size P and migrate their blocks away,
//                    while copying Q region -> slot (worker) | flip L to the slot | once drained,
//                    detach the segments, copy replica P -> region (worker) | flip L to the region
// Flips, attaches, migrations and detaches happen in advance(), which the engine thread calls at
// iteration boundaries; advance() never waits on a copy, so no iteration waits on one either. KV
// entries never change precision: requests keep decoding across swaps with no recompute.
//
// Engine thread only (advance, start, abort), except wait_idle at shutdown.
#include <chrono>
#include <cstdint>
#include <future>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "morph/packed_layer.h"
#include "morph/replica_store.h"

namespace morphserve {

class KvBlockPool;
class LlamaRunner;

enum class SwapDirection { Down, Up };
std::string_view swap_direction_name(SwapDirection direction);  // "down", "up"

// The budget accounts the swapper uses.
inline constexpr std::string_view kRegionAccount = "layer weights";
inline constexpr std::string_view kLentAccount = "kv in layer regions";
inline constexpr std::string_view kStagingAccount = "swap staging";

struct RegionSegment {
  int segment = 0;     // KV pool segment id
  size_t offset = 0;   // byte range of the region lent to it
  size_t bytes = 0;
};

// A swap that ended: finished, or failed with the layer left as it was.
struct SwapRecord {
  int layer = 0;
  DType from = DType::F16;
  DType to = DType::F16;
  SwapDirection direction = SwapDirection::Down;
  double seconds = 0.0;              // start to final flip
  int64_t blocks_migrated = 0;       // live KV blocks moved out of drained segments (up only)
  int64_t kv_blocks_delta = 0;       // change of the pool's capacity
  std::string error;                 // non-empty: the swap failed, the layer still runs at `from`
  bool source_changed = false;       // it failed because a model or replica file changed on disk
};

// What /morph shows of a layer.
struct LayerMorphState {
  DType precision = DType::F16;      // what the runner multiplies with now
  std::optional<DType> heading_to;   // set while a swap is in flight
  std::string phase;                 // "idle", "staging", "on staging", "draining", "copying in"
  bool on_staging = false;
  std::vector<RegionSegment> segments;
  size_t region_bytes = 0;
};

class LayerSwapper {
 public:
  // Allocates `staging_slots` slots through `backend`, against its budget (OutOfBudget when they
  // do not fit); the regions come with take_weights. The store and backend must outlive the
  // swapper.
  LayerSwapper(const ReplicaStore& store, int staging_slots, Backend& backend);
  ~LayerSwapper();
  LayerSwapper(const LayerSwapper&) = delete;
  LayerSwapper& operator=(const LayerSwapper&) = delete;

  // Bytes the regions and the slots will take, for planning the budget before building one.
  static size_t region_bytes_for(const ReplicaStore& store);
  static size_t staging_bytes_for(const ReplicaStore& store, int staging_slots);

  // Moves the model's full-precision layer weights into one region per layer, allocated from the
  // backend: a layer at a time, each layer's own matrices freed once its region holds them, so
  // the budget carries one layer twice at most, never the model. Checks the peak first: throws
  // OutOfBudget, moving nothing, when it does not fit, and InvalidArgument when a layer is not at
  // its replicas' full precision. Done once; later calls do nothing.
  void take_weights(LlamaModel& model);
  // take_weights (if not yet done), then points the runner at the regions.
  void attach(LlamaModel& model, LlamaRunner& runner);

  int n_layers() const { return static_cast<int>(layers_.size()); }
  DType precision(int layer) const;
  bool busy(int layer) const;
  int in_flight() const;
  int free_slots() const;
  const std::vector<DType>& ladder(int layer) const { return store_.ladder(layer); }

  // Starts moving a layer to another rung of its ladder. Returns false, starting nothing, when
  // the layer is busy, no staging slot is free or it is already there. Throws InvalidArgument
  // for a precision off the layer's ladder, and ModelFileError, starting nothing, when the file
  // the replica comes from changed on disk (ReplicaStore::source_problem).
  bool start(int layer, DType target, KvBlockPool& kv);
  // Abandons a restore that is still draining (pressure came back): its segments allocate again
  // and the layer stays where it was. Returns false when the restore is past that point.
  bool abort_restore(int layer, KvBlockPool& kv, LlamaRunner& runner);
  // Advances every swap in flight as far as it can go without waiting. Returns the ones that
  // ended: finished, or failed (a source file truncated or changed mid-swap: SwapRecord::error),
  // in which case the layer is back where it was, at the precision it had, its region intact.
  std::vector<SwapRecord> advance(KvBlockPool& kv, LlamaRunner& runner);
  // Blocks until no copy is running (shutdown); swaps stay where they are.
  void wait_idle();

  // Throws std::logic_error when a region's weights and its segments overlap or leave the
  // region, when the pool's capacity disagrees with the segments, or when the budget ledger
  // disagrees with either: the memory-safety invariants of morphing.
  void check_invariants(const KvBlockPool& kv) const;

  LayerMorphState state(int layer, const KvBlockPool& kv) const;

 private:
  // A swap is a fixed list of steps (kDownSteps, kUpSteps: the two lines drawn at the top of this
  // file), run in order by advance(). A copy step hands its copy to the worker and
  // the swap waits at that step until the next boundary that finds it done; the others are
  // instant.
  enum class Step {
    CopyReplicaToSlot,    // worker: the target replica -> the staging slot
    CopyRegionToSlot,     // worker: the weights the layer runs at -> the slot
    FlipToSlot,           // the runner reads the layer from the slot
    Drain,                // wait until the segments in the bigger weights' way are empty and detached
    CopyReplicaToRegion,  // worker: the target replica -> the region's start
    CopySlotToRegion,     // worker: the slot -> the region's start
    FlipToRegion,         // the runner reads the region at the target; its free tail is lent to the KV pool
  };
  static constexpr Step kDownSteps[] = {Step::CopyReplicaToSlot, Step::FlipToSlot, Step::CopySlotToRegion,
                                        Step::FlipToRegion};
  // A restore also drains its segments at every boundary from its start (migration needs no copy
  // to have finished); its Drain step waits for the last of them.
  static constexpr Step kUpSteps[] = {Step::CopyRegionToSlot, Step::FlipToSlot, Step::Drain, Step::CopyReplicaToRegion,
                                      Step::FlipToRegion};
  struct Operation {
    DType from = DType::F16;
    DType to = DType::F16;
    SwapDirection direction = SwapDirection::Down;
    std::span<const Step> steps;
    size_t step = 0;          // the step the swap is at
    CopyTicket copy;          // the current copy step's copy, once submitted
    int slot = -1;
    std::vector<int> draining;  // segment ids still to empty and detach (up only)
    std::chrono::steady_clock::time_point started;
    int64_t blocks_migrated = 0;
    int64_t capacity_before = 0;

    Step current() const { return steps[step]; }
    // Whether the region is being (or has been) overwritten with the target's weights: past the
    // point where a restore can be abandoned, and the bytes the invariants give to the weights.
    bool region_copy_started() const {
      const Step s = current();
      return s == Step::CopyReplicaToRegion || s == Step::CopySlotToRegion ? copy.valid() : s == Step::FlipToRegion;
    }
  };
  struct Layer {
    ResidentBuffer region;
    DType precision = DType::F16;
    int on_slot = -1;  // the staging slot the runner reads this layer from, or -1: the region
    std::vector<RegionSegment> segments;  // sorted by offset
    std::optional<Operation> op;
  };

  PackedLayer packing(int layer, DType precision) const;
  LayerLinears region_views(int layer, DType precision) const;
  LayerLinears slot_views(int slot, int layer, DType precision) const;
  void lend_free_tail(int layer, KvBlockPool& kv);
  void detach_segment(int layer, int segment, KvBlockPool& kv);
  // Runs the layer's swap on from its current step as far as it goes without waiting; true when
  // its last step is done.
  bool run_steps(int layer, KvBlockPool& kv, LlamaRunner& runner);
  // Hands the current copy step's copy to the worker. A restore whose replica file changed is
  // abandoned instead (ModelFileError).
  void submit_copy(int layer, KvBlockPool& kv, LlamaRunner& runner);
  // Collects the current copy step's finished copy; a failed one leaves the layer as it was and
  // rethrows.
  void collect_copy(int layer, KvBlockPool& kv, LlamaRunner& runner);
  // Migrates the live blocks out of the restore's segments and detaches the empty ones.
  void drain(int layer, KvBlockPool& kv);
  // After a failed copy into the region of a restore: back to the slot's weights, in the region.
  void recover_from_slot(int layer, KvBlockPool& kv, LlamaRunner& runner);
  SwapRecord finish(int layer, const KvBlockPool& kv);

  const ReplicaStore& store_;
  Backend& backend_;
  std::vector<Layer> layers_;
  std::vector<ResidentBuffer> slots_;
  std::vector<bool> slot_busy_;
  size_t region_total_ = 0;
  bool weights_taken_ = false;
};

}  // namespace morphserve
