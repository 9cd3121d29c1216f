#pragma once
// The replica file (DESIGN.md §4): the GGUF that holds every layer's W8 and W4 replicas of one model,
// where it lives by default, how it is written, and whether one still matches its model.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "model/gguf_file.h"
#include "morph/replica_layout.h"

namespace morphserve {

class ThreadPool;

// Progress of a long operation: `done` of `total` units (matrices quantized).
using ProgressFn = std::function<void(size_t done, size_t total)>;

// The default replica file of a model: MODEL.replicas.gguf beside it.
std::string default_replica_path(const std::string& model_path);

// Quantizes every layer of a GGUF model to Q8_0 and Q4_0 and writes the replica GGUF at
// `out_path` (atomically: a temporary file renamed into place). The file records a fingerprint of
// the model file so a stale replica file is detected. Throws ModelFileError / InvalidArgument
// with a message for the user (unreadable model, unwritable output).
void write_replica_file(const std::string& model_path, const std::string& out_path, ThreadPool& pool,
                        const ProgressFn& progress = {});

// Identifies the exact model file a replica file was made from. The header hash covers the header,
// metadata and tensor infos (everything before the data section), so any change of shape, type or
// metadata shows; the first bytes of every tensor's data are hashed too, so that two exports of the
// same architecture with different weights (a fine-tune) differ as well. Reads a few pages, never
// the whole file.
struct ModelFingerprint {
  uint64_t file_size = 0;
  uint64_t hash = 0;
  bool operator==(const ModelFingerprint&) const = default;
};
ModelFingerprint model_fingerprint(const GgufFile& model);
// 64-bit FNV-1a, continuing from `hash`.
uint64_t fnv1a64(const void* data, size_t size, uint64_t hash = 0xcbf29ce484222325ull);

// Writes the replica file for an already opened model (write_replica_file opens it first).
void write_replica_file_for(const GgufFile& model, const ModelLayers& layers, const std::string& out_path,
                            ThreadPool& pool, const ProgressFn& progress);
// Does this GGUF say it is a replica file (of any model, any format version)?
bool is_replica_file(const GgufFile& file);
// Why `replica` cannot serve `model` (one clause: "was made from a different model file"), or ""
// when it matches: its kind, format version, fingerprint, layer count, and every expected tensor
// with its type and shape.
std::string replica_file_problem(const GgufFile& replica, const ModelLayers& layers, const ModelFingerprint& model);

}  // namespace morphserve
