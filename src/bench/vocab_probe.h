#pragma once
// How many token ids a server's vocabulary holds, so pseudo-random prompt ids stay inside it
// without --vocab-size. Two sources, tried in order:
//   - GET /v1/models: the model's `vocab_size`, which morphserve lists (vLLM and llama-server do not);
//   - probing: 1-token completions whose prompt is the single id [k], binary-searched between an id
//     the server accepts and one it refuses (400 or 422, as every OpenAI-style server answers an
//     id beyond its vocabulary). About log2(cap) requests of one token each.
#include <cstdint>
#include <string>

#include "bench/server_url.h"

namespace morphserve::bench {

struct VocabSize {
  int64_t size = 0;  // ids in [0, size) are accepted; at most the cap asked for
  std::string how;   // for the report: "vocab_size 512 from GET /v1/models", "probed: id 511 accepted, 512 refused"
};

// The vocabulary of `model`, capped at `cap` (ids beyond the cap are never asked about). Throws
// InvalidArgument when the server cannot be asked (unreachable, no /v1/completions, refuses even
// id 0, answers with something other than 200/400/422), saying to give --vocab-size.
VocabSize discover_vocab_size(const ServerUrl& url, const std::string& api_key, const std::string& model, int64_t cap);

}  // namespace morphserve::bench
