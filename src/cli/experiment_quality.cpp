#include "cli/experiment_quality.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "backend/cpu_backend.h"
#include "core/error.h"
#include "engine/kv_block_pool.h"
#include "engine/llama_runner.h"
#include "engine/model_loader.h"
#include "engine/perplexity.h"
#include "model/tokenizer.h"

namespace morphserve::cli {

TokenAgreement token_agreement(const bench::BenchRun& run, const bench::BenchRun& reference, const Tokenizer& tokenizer) {
  TokenAgreement result;
  int64_t equal = 0;
  const size_t n = std::min(run.records.size(), reference.records.size());
  for (size_t i = 0; i < n; ++i) {
    const bench::RequestRecord& a = run.records[i];
    const bench::RequestRecord& b = reference.records[i];
    if (!a.ok() || !b.ok()) continue;
    // Both texts are encoded the same way, so a shared leading-space convention cancels out.
    const auto ours = tokenizer.encode(a.output_text, false);
    const auto ref = tokenizer.encode(b.output_text, false);
    for (size_t t = 0; t < ref.size(); ++t) equal += t < ours.size() && ours[t] == ref[t] ? 1 : 0;
    result.reference_tokens += static_cast<int64_t>(ref.size());
    ++result.requests;
  }
  result.share = result.reference_tokens > 0 ? static_cast<double>(equal) / static_cast<double>(result.reference_tokens) : 0.0;
  return result;
}

std::map<std::string, int64_t> tokens_per_precision_state(const bench::BenchRun& run) {
  std::vector<std::pair<double, std::string>> states;
  for (const bench::ServerSample& s : run.samples) {
    if (!s.precision_map.empty()) states.emplace_back(s.seconds, s.precision_map);
  }
  std::map<std::string, int64_t> tokens;
  if (states.empty()) return tokens;
  for (const bench::RequestRecord& r : run.records) {
    for (double t : r.token_seconds) {
      auto it = std::upper_bound(states.begin(), states.end(), t,
                                 [](double time, const auto& state) { return time < state.first; });
      const std::string& state = it == states.begin() ? states.front().second : std::prev(it)->second;
      ++tokens[state];
    }
  }
  return tokens;
}

PerplexityCache::PerplexityCache(std::string model_source, std::string text_path, int64_t ctx, int64_t max_tokens,
                                 ThreadPool& pool)
    : model_source_(std::move(model_source)), ctx_(ctx), max_tokens_(max_tokens), pool_(pool) {
  std::ifstream in(text_path, std::ios::binary);
  if (!in) fail<InvalidArgument>("cannot read the quality text {}", text_path);
  std::stringstream text;
  text << in.rdbuf();
  text_ = text.str();
}

double PerplexityCache::perplexity(const std::string& precision_map) {
  if (const auto it = cache_.find(precision_map); it != cache_.end()) return it->second;
  // Offline: an unmetered backend, declared before the model whose weights it holds.
  UnmeteredCpuBackend backend(pool_);
  const LlamaModel model = load_model(model_source_, precision_map, pool_, backend);
  const auto tokens = model.tokenizer.encode(text_, true);
  const KvLayout layout{model.config.n_layers, 16, model.config.kv_dim(),
                        model.weights.token_embd.type == DType::F32 ? DType::F32 : DType::F16};
  KvBlockPool kv(layout, (ctx_ + layout.block_size - 1) / layout.block_size, backend);
  LlamaRunner runner(model, kv, backend, ctx_);
  const PerplexityResult r = evaluate_perplexity(runner, kv, tokens, model.tokenizer.bos(), PerplexityOptions{ctx_, max_tokens_});
  spdlog::info("perplexity of state '{}': {:.4f}", precision_map, r.perplexity);
  cache_[precision_map] = r.perplexity;
  return r.perplexity;
}

WeightedPerplexity PerplexityCache::weighted(const std::map<std::string, int64_t>& tokens_per_state) {
  WeightedPerplexity result;
  double weighted_sum = 0.0;
  int64_t total = 0;
  for (const auto& [state, tokens] : tokens_per_state) {
    const double ppl = perplexity(state);
    result.per_state[state] = ppl;
    weighted_sum += ppl * static_cast<double>(tokens);
    total += tokens;
  }
  result.perplexity = total > 0 ? weighted_sum / static_cast<double>(total) : 0.0;
  return result;
}

}  // namespace morphserve::cli
