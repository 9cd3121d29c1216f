#include "morph/importance.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "backend/cpu_backend.h"
#include "core/aligned_buffer.h"
#include "core/error.h"
#include "engine/kv_block_pool.h"
#include "engine/layer_linears.h"
#include "engine/llama_runner.h"
#include "quant/quantize.h"

namespace morphserve {

namespace {

double row_cosine(const float* a, const float* b, int64_t width) {
  double dot = 0.0, aa = 0.0, bb = 0.0;
  for (int64_t i = 0; i < width; ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  if (aa == 0.0 || bb == 0.0) return aa == bb ? 1.0 : 0.0;
  // Rounding can push a cosine of identical rows a hair past 1; scores are documented in [-1, 1].
  return std::clamp(dot / std::sqrt(aa * bb), -1.0, 1.0);
}

// A mean over every calibration token, accumulated window by window.
struct MeanCosine {
  double sum = 0.0;
  int64_t rows = 0;

  void add(const float* a, const float* b, int64_t n_rows, int64_t width) {
    for (int64_t r = 0; r < n_rows; ++r) sum += row_cosine(a + r * width, b + r * width, width);
    rows += n_rows;
  }
  double mean() const { return rows > 0 ? sum / static_cast<double>(rows) : 0.0; }
};

// The W4 copy of every layer, held only while profiling. A matrix already in the target type, or
// one that cannot be (width not a multiple of 32), is shared with the model instead of copied.
class QuantizedLayers {
 public:
  QuantizedLayers(const LlamaModel& model, DType target, ThreadPool& pool) {
    for (const LayerWeights& layer : model.weights.layers) {
      LayerLinears views = LayerLinears::of(layer);
      for (MatrixView& v : views.m) {
        if (v.type == target) continue;
        if (v.cols % dtype_block_elements(target) != 0) continue;
        buffers_.push_back(convert_matrix(v, target, &pool));
        v = MatrixView{target, buffers_.back().data(), v.rows, v.cols};
      }
      layers_.push_back(views);
    }
  }
  const LayerLinears& layer(int l) const { return layers_[static_cast<size_t>(l)]; }

 private:
  std::vector<AlignedBuffer> buffers_;  // AlignedBuffer moves keep their pointer, so views stay valid
  std::vector<LayerLinears> layers_;
};

// Runs calibration windows through one runner from an empty cache each time and keeps every
// token's logits; the observer sees each layer's residual stream with the window offset of its
// first row (a window may take several forward passes when it is longer than the batch).
class WindowRunner {
 public:
  using Observer = std::function<void(int layer, int64_t first_token, std::span<const float> in, std::span<const float> out)>;

  WindowRunner(const LlamaModel& model, const ImportanceOptions& o, ThreadPool& pool)
      : backend_(pool),
        kv_(KvLayout{model.config.n_layers, 16, model.config.kv_dim(), o.kv_type}, (o.ctx + 15) / 16, backend_),
        runner_(model, kv_, backend_, std::min(o.batch, o.ctx)),
        vocab_(model.config.vocab_size),
        logits_(static_cast<size_t>(o.ctx * vocab_)) {}

  LlamaRunner& runner() { return runner_; }
  // An empty observer unhooks the runner's, so passes nobody observes copy nothing.
  void set_observer(Observer observer) {
    observer_ = std::move(observer);
    if (!observer_) {
      runner_.set_layer_observer({});
      return;
    }
    runner_.set_layer_observer([this](int layer, std::span<const float> in, std::span<const float> out) {
      observer_(layer, piece_start_, in, out);
    });
  }

  // Logits of every token of the window (rows of vocab floats), valid until the next run.
  std::span<const float> run(std::span<const int32_t> window) {
    const auto n_ctx = static_cast<int64_t>(window.size());
    SequenceKv seq;
    if (!seq.reserve(kv_, n_ctx)) fail<InvalidArgument>("the KV pool is too small for a window of {} tokens", n_ctx);
    const int64_t step = runner_.max_batch_tokens();
    for (piece_start_ = 0; piece_start_ < n_ctx; piece_start_ += step) {
      const int64_t n = std::min(step, n_ctx - piece_start_);
      const BatchSequence piece{window.subspan(static_cast<size_t>(piece_start_), static_cast<size_t>(n)), piece_start_,
                                &seq.blocks, true};
      const std::span<const float> logits = runner_.forward(std::span(&piece, 1));
      std::copy(logits.begin(), logits.end(), logits_.begin() + piece_start_ * vocab_);
    }
    seq.release_all(kv_);
    return std::span<const float>(logits_).first(static_cast<size_t>(n_ctx * vocab_));
  }

 private:
  // Offline profiling has no budget to keep: an unmetered backend over the caller's pool.
  UnmeteredCpuBackend backend_;
  KvBlockPool kv_;
  LlamaRunner runner_;
  int64_t vocab_;
  std::vector<float> logits_;
  Observer observer_;
  int64_t piece_start_ = 0;
};

double lis_of(const ImportanceOptions& o, double lts, double lrs, double mds) {
  return o.lts_weight * lts + o.lrs_weight * lrs + o.mds_weight * mds;
}

}  // namespace

double mean_row_cosine(std::span<const float> a, std::span<const float> b, int64_t width) {
  if (width <= 0 || a.size() != b.size() || a.size() % static_cast<size_t>(width) != 0) {
    fail<InvalidArgument>("cannot compare {} and {} floats as rows of {}", a.size(), b.size(), width);
  }
  MeanCosine mean;
  mean.add(a.data(), b.data(), static_cast<int64_t>(a.size()) / width, width);
  return mean.mean();
}

int64_t importance_pass_count(int n_layers, int64_t n_windows) {
  // Phase one: a full-precision pass plus one pass per layer at W4 (LTS, LRS and step 0's MDS).
  // Each later greedy step s: the pass with Q quantized plus one per remaining candidate.
  int64_t per_window = 1 + n_layers;
  for (int s = 1; s < n_layers; ++s) per_window += 1 + (n_layers - s);
  return per_window * n_windows;
}

ImportanceProfile profile_layer_importance(const LlamaModel& model, std::span<const int32_t> calib_tokens,
                                           const ImportanceOptions& o, ThreadPool& pool,
                                           const ImportanceProgress& progress) {
  const LlamaConfig& c = model.config;
  const int n_layers = c.n_layers;
  if (o.ctx < 1 || o.ctx > c.context_length) {
    fail<InvalidArgument>("a calibration window of {} tokens does not fit the model's context of {}", o.ctx,
                          c.context_length);
  }
  if (o.batch < 1) fail<InvalidArgument>("the profiling batch must be at least 1 token, got {}", o.batch);
  int64_t usable = static_cast<int64_t>(calib_tokens.size());
  if (o.max_tokens > 0) usable = std::min(usable, o.max_tokens);
  const int64_t n_windows = usable / o.ctx;
  if (n_windows == 0) {
    fail<InvalidArgument>("the calibration text has {} tokens (of at most {} used), fewer than one window of {}",
                          calib_tokens.size(), o.max_tokens, o.ctx);
  }

  const QuantizedLayers quantized(model, o.quantized, pool);
  WindowRunner windows(model, o, pool);
  LlamaRunner& runner = windows.runner();
  std::vector<LayerLinears> original;
  for (int l = 0; l < n_layers; ++l) original.push_back(runner.layer(l));

  const int64_t total_passes = importance_pass_count(n_layers, n_windows);
  int64_t passes = 0;
  const auto pass_done = [&] {
    ++passes;
    if (progress) progress(passes, total_passes);
  };
  std::vector<int32_t> window(static_cast<size_t>(o.ctx));
  const auto load_window = [&](int64_t w) {
    std::copy_n(calib_tokens.begin() + w * o.ctx, o.ctx, window.begin());
    if (o.bos >= 0) window[0] = o.bos;
  };

  const auto vocab = static_cast<int64_t>(c.vocab_size);
  const auto embd = static_cast<int64_t>(c.n_embd);
  const size_t window_hidden = static_cast<size_t>(o.ctx * embd);
  std::vector<MeanCosine> lts(static_cast<size_t>(n_layers)), lrs(static_cast<size_t>(n_layers));
  std::vector<std::vector<MeanCosine>> mds(static_cast<size_t>(n_layers),
                                           std::vector<MeanCosine>(static_cast<size_t>(n_layers)));
  std::vector<float> base_logits(static_cast<size_t>(o.ctx * vocab));
  // Layer outputs of the current window at full precision: LRS compares against them.
  std::vector<std::vector<float>> fp_out(static_cast<size_t>(n_layers), std::vector<float>(window_hidden));

  // Phase one. The pass with only layer j at W4 gives LRS_j (layer j sees full-precision input)
  // and MDS_j({}) (its logits against the full-precision ones) at once.
  for (int64_t w = 0; w < n_windows; ++w) {
    load_window(w);
    windows.set_observer([&](int l, int64_t first, std::span<const float> in, std::span<const float> out) {
      const int64_t rows = static_cast<int64_t>(in.size()) / embd;
      lts[static_cast<size_t>(l)].add(in.data(), out.data(), rows, embd);
      std::copy(out.begin(), out.end(), fp_out[static_cast<size_t>(l)].begin() + first * embd);
    });
    const std::span<const float> fp_logits = windows.run(window);
    std::copy(fp_logits.begin(), fp_logits.end(), base_logits.begin());
    pass_done();
    for (int j = 0; j < n_layers; ++j) {
      windows.set_observer([&](int l, int64_t first, std::span<const float>, std::span<const float> out) {
        if (l != j) return;
        const int64_t rows = static_cast<int64_t>(out.size()) / embd;
        lrs[static_cast<size_t>(j)].add(fp_out[static_cast<size_t>(j)].data() + first * embd, out.data(), rows, embd);
      });
      runner.set_layer(j, quantized.layer(j));
      const std::span<const float> logits = windows.run(window);
      runner.set_layer(j, original[static_cast<size_t>(j)]);
      mds[0][static_cast<size_t>(j)].add(base_logits.data(), logits.data(), o.ctx, vocab);
      pass_done();
    }
  }
  windows.set_observer({});

  ImportanceProfile profile;
  profile.n_windows = n_windows;
  profile.n_tokens = n_windows * o.ctx;
  profile.ctx = o.ctx;
  profile.layers.resize(static_cast<size_t>(n_layers));
  for (int l = 0; l < n_layers; ++l) {
    LayerImportance& li = profile.layers[static_cast<size_t>(l)];
    li.layer = l;
    li.lts = lts[static_cast<size_t>(l)].mean();
    li.lrs = lrs[static_cast<size_t>(l)].mean();
  }

  std::vector<bool> in_q(static_cast<size_t>(n_layers), false);
  for (int s = 0; s < n_layers; ++s) {
    if (s > 0) {
      // Q (the layers picked so far) stays at W4 for the whole step; each candidate joins it for
      // one pass and its logits are compared with the pass over Q alone.
      for (int64_t w = 0; w < n_windows; ++w) {
        load_window(w);
        const std::span<const float> q_logits = windows.run(window);
        std::copy(q_logits.begin(), q_logits.end(), base_logits.begin());
        pass_done();
        for (int j = 0; j < n_layers; ++j) {
          if (in_q[static_cast<size_t>(j)]) continue;
          runner.set_layer(j, quantized.layer(j));
          const std::span<const float> logits = windows.run(window);
          runner.set_layer(j, original[static_cast<size_t>(j)]);
          mds[static_cast<size_t>(s)][static_cast<size_t>(j)].add(base_logits.data(), logits.data(), o.ctx, vocab);
          pass_done();
        }
      }
    }
    std::vector<double> step_mds(static_cast<size_t>(n_layers), std::numeric_limits<double>::quiet_NaN());
    int best = -1;
    double best_lis = 0.0;
    for (int j = 0; j < n_layers; ++j) {
      if (in_q[static_cast<size_t>(j)]) continue;
      const LayerImportance& li = profile.layers[static_cast<size_t>(j)];
      step_mds[static_cast<size_t>(j)] = mds[static_cast<size_t>(s)][static_cast<size_t>(j)].mean();
      const double lis = lis_of(o, li.lts, li.lrs, step_mds[static_cast<size_t>(j)]);
      // Strictly greater: ties go to the lower layer, so the order is deterministic.
      if (best < 0 || lis > best_lis) {
        best = j;
        best_lis = lis;
      }
    }
    LayerImportance& picked = profile.layers[static_cast<size_t>(best)];
    picked.mds = step_mds[static_cast<size_t>(best)];
    picked.lis = best_lis;
    picked.rank = s;
    profile.order.push_back(best);
    profile.mds_steps.push_back(std::move(step_mds));
    in_q[static_cast<size_t>(best)] = true;
    runner.set_layer(best, quantized.layer(best));
  }
  return profile;
}

}  // namespace morphserve
