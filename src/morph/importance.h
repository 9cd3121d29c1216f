#pragma once
// Layer-importance profiling (MorphServe §4.2, Algorithm 1): which decoder layers can run
// quantized with the least harm, in the order the controller swaps them (DESIGN.md §5).
//
// Per layer j, on calibration text (every score a cosine similarity averaged over tokens):
//   LTS_j     cos(residual stream before layer j, after it): high = the layer changes little.
//   LRS_j     cos(layer j's output at full precision, its output with its linears at W4), both
//             from the same full-precision input: high = the layer quantizes well.
//   MDS_j(Q)  cos(final logits with the set Q quantized, with Q ∪ {j} quantized): high = adding j
//             to what is already quantized barely moves the model's output.
//   LIS_j(Q)  = 0.25·LTS_j + 0.25·LRS_j + 0.5·MDS_j(Q)
// Greedy: Q = {}; repeatedly append the j ∉ Q with the largest LIS_j(Q) to the order and to Q.
// MDS is measured against the model as it will actually run once Q is swapped, which is why the
// order is greedy instead of one sort: layers interact.
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "core/dtype.h"
#include "model/llama_weights.h"

namespace morphserve {

class ThreadPool;

struct ImportanceOptions {
  int64_t ctx = 128;          // tokens per calibration window (each starts from an empty cache)
  int64_t max_tokens = 1024;  // use at most this many calibration tokens, in whole windows; 0: all
  int64_t batch = 512;        // tokens per forward pass (bounds the runner's workspace)
  int32_t bos = -1;           // replaces each window's first token, as perplexity does; < 0: keep it
  DType quantized = DType::Q4_0;  // the replica precision being ranked (W4, the deepest swap)
  DType kv_type = DType::F32;
  double lts_weight = 0.25;
  double lrs_weight = 0.25;
  double mds_weight = 0.5;
};

struct LayerImportance {
  int layer = 0;
  double lts = 0.0;
  double lrs = 0.0;
  double mds = 0.0;  // MDS_j(Q) at the greedy step that picked this layer
  double lis = 0.0;  // LIS_j(Q) at that step
  int rank = 0;      // position in the order: 0 is swapped first
};

struct ImportanceProfile {
  std::vector<LayerImportance> layers;  // indexed by layer
  std::vector<int> order;               // swap first -> swap last
  // mds_steps[s][j]: MDS_j at greedy step s (Q = order[0..s)); NaN where j is already in Q.
  std::vector<std::vector<double>> mds_steps;
  int64_t n_tokens = 0;   // calibration tokens every score averages over
  int64_t n_windows = 0;
  int64_t ctx = 0;
};

// Called after every forward pass over a window: `done` of `total` passes.
using ImportanceProgress = std::function<void(int64_t done, int64_t total)>;

// Number of forward passes profile_layer_importance runs (for progress bars and estimates).
int64_t importance_pass_count(int n_layers, int64_t n_windows);

// Profiles `model` as it is loaded (its current per-layer formats are "full precision"); W4
// copies of every layer are made in memory for the duration. Matrices whose width is not a
// multiple of 32 stay in their stored type in those copies, as the loader does. Throws
// InvalidArgument when the calibration text is shorter than one window or a window does not fit
// the model's context.
ImportanceProfile profile_layer_importance(const LlamaModel& model, std::span<const int32_t> calib_tokens,
                                           const ImportanceOptions& options, ThreadPool& pool,
                                           const ImportanceProgress& progress = {});

// Mean over rows of cos(a_row, b_row), rows of `width` floats, in double. A pair of zero rows
// counts as identical (1), a zero row against a non-zero one as unrelated (0).
double mean_row_cosine(std::span<const float> a, std::span<const float> b, int64_t width);

}  // namespace morphserve
