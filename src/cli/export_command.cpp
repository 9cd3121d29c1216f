#include "cli/export_command.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "cli/model_options.h"
#include "core/error.h"
#include "model/hf_checkpoint.h"
#include "model/llama_gguf_writer.h"

namespace morphserve::cli {

namespace {

struct ExportOptions {
  ModelOptions model;
  std::string out;
  std::string format = "gguf";
};

void run_export(const ExportOptions& o) {
  if (o.out.empty()) fail<InvalidArgument>("export needs an output path (-o FILE.gguf or -o DIR for --format hf)");
  const auto start = std::chrono::steady_clock::now();
  const LoadedModel loaded = load_for_cli(o.model);
  uintmax_t bytes = 0;
  if (o.format == "hf") {
    write_hf_checkpoint(*loaded.model, o.out);
    for (const auto& entry : std::filesystem::directory_iterator(o.out)) bytes += entry.file_size();
  } else {
    write_llama_gguf(*loaded.model, o.out);
    bytes = std::filesystem::file_size(o.out);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("wrote %s: %.1f MiB in %.2f s (%s, %d layers)\n", o.out.c_str(), static_cast<double>(bytes) / (1 << 20),
              seconds,
              std::string(architecture_name(loaded.model->config.arch)).c_str(), loaded.model->config.n_layers);
}

}  // namespace

void add_export_command(CLI::App& app) {
  auto options = std::make_shared<ExportOptions>();
  CLI::App* command = app.add_subcommand(
      "export", "Write a model (e.g. -m dummy:llama3-1b:f16) as a GGUF file llama.cpp also reads, or as a Hugging Face checkpoint");
  options->model.add_to(*command);
  command->add_option("-o,--output", options->out, "GGUF file, or checkpoint folder for --format hf, to write")
      ->required();
  command->add_option("--format", options->format,
                      "gguf (llama.cpp's file) or hf (config.json, safetensors shards, tokenizer.json)")
      ->check(CLI::IsMember({"gguf", "hf"}))
      ->capture_default_str();
  command->callback([options] { run_export(*options); });
}

}  // namespace morphserve::cli
