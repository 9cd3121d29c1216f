#pragma once
// The tests' model files: a LlamaModel (a dummy, usually) written as GGUF by the project's own
// writer (model/llama_gguf_writer.h), so the replica-store, `morphserve quantize` and server
// tests need no download.
#include "model/dummy_model.h"
#include "model/llama_gguf_writer.h"

namespace morphserve::testing {

using ::morphserve::write_llama_gguf;

}  // namespace morphserve::testing
