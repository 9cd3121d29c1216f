// The engine's side of the backend seam: the weights, the KV pool's base and the runner's
// workspace are allocated through the backend against the ledger, and a forward pass computes
// only through the backend's kernel entry points.
#include <gtest/gtest.h>

#include <vector>

#include "backend/cpu_backend.h"
#include "core/error.h"
#include "engine/engine.h"
#include "engine/kv_block_pool.h"
#include "engine/llama_runner.h"
#include "kernels/thread_pool.h"
#include "model/dummy_model.h"
#include "test_backend.h"

namespace morphserve {
namespace {

// Forwards to a CpuBackend over the same ledger and counts the kernel calls.
class CountingBackend final : public Backend {
 public:
  CountingBackend(MemoryBudget& budget, ThreadPool& pool) : Backend(budget), cpu_(budget, pool) {}

  std::string_view name() const override { return "counting"; }
  ResidentBuffer allocate(std::string_view account, size_t bytes) override { return cpu_.allocate(account, bytes); }
  CopyTicket copy_in(std::byte* dst, size_t bytes, std::function<void(std::byte*)> fill) override {
    return cpu_.copy_in(dst, bytes, std::move(fill));
  }
  CopyTicket copy_within(std::byte* dst, const std::byte* src, size_t bytes) override {
    return cpu_.copy_within(dst, src, bytes);
  }
  void copy_within_now(std::byte* dst, const std::byte* src, size_t bytes) override {
    ++copies;
    cpu_.copy_within_now(dst, src, bytes);
  }
  void wait_idle() override { cpu_.wait_idle(); }

  void matmul(const MatrixView& w, const float* x, int64_t n, float* y) override {
    ++matmuls;
    cpu_.matmul(w, x, n, y);
  }
  void matmul_shared_input(std::span<const MatmulOutput> outputs, const float* x, int64_t n) override {
    ++shared_input_calls;
    matmuls += static_cast<int>(outputs.size());
    cpu_.matmul_shared_input(outputs, x, n);
  }
  void embed(const MatrixView& table, const int32_t* tokens, int64_t n, float* out) override {
    ++embeds;
    cpu_.embed(table, tokens, n, out);
  }
  void rms_norm(const float* x, const float* weight, float* out, int64_t rows, int64_t n, float eps) override {
    ++norms;
    cpu_.rms_norm(x, weight, out, rows, n, eps);
  }
  void rope(float* x, int64_t n_tokens, int n_heads, const int32_t* positions, const RopeParams& params) override {
    ++ropes;
    cpu_.rope(x, n_tokens, n_heads, positions, params);
  }
  void silu_mul(const float* gate, const float* up, float* out, int64_t n) override {
    ++silus;
    cpu_.silu_mul(gate, up, out, n);
  }
  void add(float* x, const float* y, int64_t n) override {
    ++adds;
    cpu_.add(x, y, n);
  }
  void kv_store(DType type, const float* row, std::byte* dst, int64_t n) override {
    ++kv_stores;
    cpu_.kv_store(type, row, dst, n);
  }
  void attention(const float* q, int64_t n_q, int64_t first_pos, int n_heads, const KvBlocks& kv, float scale,
                 float* out) override {
    ++attentions;
    cpu_.attention(q, n_q, first_pos, n_heads, kv, scale, out);
  }

  int matmuls = 0, shared_input_calls = 0, embeds = 0, norms = 0, ropes = 0, silus = 0, adds = 0, kv_stores = 0, attentions = 0, copies = 0;

 private:
  CpuBackend cpu_;
};

std::vector<float> last_logits(LlamaRunner& runner, KvBlockPool& kv, const std::vector<int32_t>& tokens) {
  SequenceKv seq;
  EXPECT_TRUE(seq.reserve(kv, static_cast<int64_t>(tokens.size())));
  const BatchSequence b{tokens, 0, &seq.blocks, false};
  const auto logits = runner.forward(std::span(&b, 1));
  std::vector<float> out(logits.begin(), logits.end());
  seq.release_all(kv);
  return out;
}

TEST(BackendSeam, EverythingResidentIsInTheLedgerAndThePassComputesOnlyThroughTheBackend) {
  ThreadPool pool(2);
  MemoryBudget budget(size_t{1} << 30);
  const std::vector<int32_t> tokens = {1, 40, 41, 300, 7};
  std::vector<float> counted;
  {
    CountingBackend backend(budget, pool);
    const LlamaModel model = make_dummy_model("tiny", DType::F16, backend);
    size_t matrices = model.weights.token_embd.bytes() + model.weights.output.bytes();
    for (const LayerWeights& layer : model.weights.layers) matrices += layer.linear_bytes();
    EXPECT_EQ(budget.held(WeightMatrix::kAccount), matrices);
    const LlamaConfig& c = model.config;
    KvBlockPool kv(KvLayout{c.n_layers, 16, c.kv_dim(), DType::F16}, 8, backend);
    EXPECT_EQ(budget.held(KvBlockPool::kBaseAccount), kv.owned_bytes());
    LlamaRunner runner(model, kv, backend, 32);
    EXPECT_EQ(budget.held(LlamaRunner::kWorkspaceAccount), LlamaRunner::workspace_bytes_for(c, 32));
    EXPECT_EQ(budget.used(), matrices + kv.owned_bytes() + runner.workspace_bytes());

    counted = last_logits(runner, kv, tokens);
    const int layers = c.n_layers;
    const int n = static_cast<int>(tokens.size());
    EXPECT_EQ(backend.embeds, 1);
    EXPECT_EQ(backend.matmuls, 7 * layers + 1);  // seven per layer and the classifier
    EXPECT_EQ(backend.shared_input_calls, 2 * layers);  // Q, K, V together; gate and up together
    EXPECT_EQ(backend.norms, 2 * layers + 1);
    EXPECT_EQ(backend.ropes, 2 * layers);        // q and k
    EXPECT_EQ(backend.silus, layers);
    EXPECT_EQ(backend.adds, 2 * layers);         // the two residual adds (tiny has no biases)
    EXPECT_EQ(backend.kv_stores, 2 * layers * n);
    EXPECT_EQ(backend.attentions, layers);
    EXPECT_EQ(backend.copies, 1);                // the last token's row, to the final norm
  }
  EXPECT_EQ(budget.used(), 0u) << "everything gave its bytes back";

  // The same pass on the plain CPU backend gives the same logits, bit for bit.
  const LlamaModel model = make_dummy_model("tiny", DType::F16, test_backend());
  KvBlockPool kv(KvLayout{model.config.n_layers, 16, model.config.kv_dim(), DType::F16}, 8, test_backend());
  LlamaRunner runner(model, kv, test_backend(), 32);
  EXPECT_EQ(last_logits(runner, kv, tokens), counted);
}

TEST(BackendSeam, AnEngineWhoseKvDoesNotFitIsRefusedAndHoldsNothing) {
  ThreadPool pool(2);
  const LlamaModel model = make_dummy_model("tiny", DType::F16, test_backend());
  EngineConfig config;
  config.kv_blocks = 64;
  const KvLayout layout{model.config.n_layers, config.block_size, model.config.kv_dim(), config.kv_type};
  MemoryBudget budget(layout.block_bytes() * 64 - 1);
  CpuBackend backend(budget, pool);
  try {
    Engine engine(model, config, backend);
    FAIL() << "an engine past the budget was built";
  } catch (const OutOfBudget& e) {
    EXPECT_NE(std::string(e.what()).find("kv base"), std::string::npos) << e.what();
  }
  EXPECT_EQ(budget.used(), 0u);
}

}  // namespace
}  // namespace morphserve
