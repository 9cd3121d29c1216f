#include "cli/generate_command.h"

#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "cli/model_options.h"
#include "core/error.h"
#include "engine/generation.h"
#include "engine/kv_block_pool.h"
#include "engine/llama_runner.h"
#include "model/text_stream_decoder.h"

namespace morphserve::cli {

namespace {

struct GenerateOptions {
  ModelOptions model;
  std::string prompt = "Once upon a time";
  int64_t n_predict = 64;
  float temperature = 0.0f;
  int top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
  int64_t seed = -1;
  int64_t batch = 512;
  bool stats = false;
  bool ignore_eos = false;
};

void run_generate(const GenerateOptions& o) {
  LoadedModel loaded = load_for_cli(o.model);
  const LlamaModel& model = *loaded.model;
  const std::vector<int32_t> prompt = model.tokenizer.encode(o.prompt, true);
  if (prompt.empty()) fail<InvalidArgument>("the prompt encodes to no tokens");
  if (o.n_predict > model.config.context_length - static_cast<int64_t>(prompt.size())) {
    fail<InvalidArgument>("{} prompt tokens + {} to generate exceed the model's context of {}", prompt.size(),
                          o.n_predict, model.config.context_length);
  }
  const int64_t needed = static_cast<int64_t>(prompt.size()) + o.n_predict;
  KvLayout layout{model.config.n_layers, 16, model.config.kv_dim(), o.model.resolve_kv_type(model)};
  KvBlockPool kv(layout, (needed + layout.block_size - 1) / layout.block_size, *loaded.backend);
  LlamaRunner runner(model, kv, *loaded.backend, std::max<int64_t>(1, std::min<int64_t>(o.batch, static_cast<int64_t>(prompt.size()))));

  GenerationOptions options;
  options.max_new_tokens = o.n_predict;
  options.sampling = SamplingParams{o.temperature, o.top_k, o.top_p, o.min_p,
                                    o.seed >= 0 ? std::optional<uint64_t>(static_cast<uint64_t>(o.seed)) : std::nullopt};
  options.sampling.validate();
  options.eos = o.ignore_eos ? -1 : model.tokenizer.eos();

  // Prime the decoder with the prompt so the continuation's first piece keeps its leading space.
  StreamDecoder decoder(model.tokenizer);
  for (int32_t id : prompt) decoder.push(id);
  (void)decoder.flush();
  const GenerationStats stats = generate_tokens(runner, kv, prompt, options, [&](int32_t token) {
    if (!o.ignore_eos && model.tokenizer.is_end_of_generation(token)) return false;  // eos, eot, <|im_end|>, ...
    const std::string text = decoder.push(token);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  const std::string rest = decoder.flush();
  std::fwrite(rest.data(), 1, rest.size(), stdout);
  std::fputc('\n', stdout);
  if (o.stats) {
    const int64_t decoded = std::max<int64_t>(0, stats.generated_tokens - 1);
    std::fprintf(stderr, "prefill: %lld tokens in %.3f s (%.1f tok/s)\ndecode: %lld tokens in %.3f s (%.1f tok/s)\n",
                 static_cast<long long>(stats.prompt_tokens), stats.prefill_seconds,
                 stats.prefill_seconds > 0 ? static_cast<double>(stats.prompt_tokens) / stats.prefill_seconds : 0.0,
                 static_cast<long long>(decoded), stats.decode_seconds,
                 stats.decode_seconds > 0 ? static_cast<double>(decoded) / stats.decode_seconds : 0.0);
  }
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto options = std::make_shared<GenerateOptions>();
  CLI::App* command = app.add_subcommand("generate", "Continue a prompt and stream the text to stdout");
  options->model.add_to(*command);
  command->add_option("-p,--prompt", options->prompt, "prompt text")->capture_default_str();
  command->add_option("-n,--n-predict", options->n_predict, "tokens to generate")->capture_default_str()->check(CLI::PositiveNumber);
  command->add_option("--temp", options->temperature, "sampling temperature; 0 is greedy")->capture_default_str();
  command->add_option("--top-k", options->top_k, "keep the k most likely tokens (0: off)")->capture_default_str();
  command->add_option("--top-p", options->top_p, "nucleus sampling mass (1: off)")->capture_default_str();
  command->add_option("--min-p", options->min_p, "drop tokens below min-p times the top probability (0: off)")->capture_default_str();
  command->add_option("--seed", options->seed, "random seed (-1: random)")->capture_default_str();
  command->add_option("-b,--batch", options->batch, "prompt tokens per forward pass")->capture_default_str()->check(CLI::PositiveNumber);
  command->add_flag("--ignore-eos", options->ignore_eos, "keep generating past the end-of-sequence token");
  command->add_flag("--stats", options->stats, "print prefill and decode speed to stderr");
  command->callback([options] { run_generate(*options); });
}

}  // namespace morphserve::cli
