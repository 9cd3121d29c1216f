#pragma once
// One generated token as a request's stream carries it: the id and, when the request asked for
// them, its log-probability and the most likely alternatives'.
#include <cstdint>
#include <vector>

namespace morphserve {

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0.0f;
};

struct GeneratedToken {
  int32_t token = 0;
  float logprob = 0.0f;                   // filled when logprobs >= 0
  std::vector<TokenLogprob> top_logprobs;  // filled when logprobs > 0
};

}  // namespace morphserve
