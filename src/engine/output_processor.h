#pragma once
// What a request's generated tokens become on its stream: text detokenized incrementally and held
// back while it could still be the start of a stop string, and the end of the request: an
// end-of-generation token (unless ignore_eos), a stop string, or max_tokens. Engine thread only.
#include <cstdint>
#include <optional>
#include <string>

#include "engine/request.h"
#include "engine/stop_matcher.h"
#include "model/text_stream_decoder.h"

namespace morphserve {

class Tokenizer;

class OutputProcessor {
 public:
  OutputProcessor(const Tokenizer& tokenizer, const RequestParams& params);

  struct Released {
    std::string text;                    // the text this token lets go of
    std::optional<FinishReason> finish;  // set when the request ends with this token
  };
  // Takes the request's `generated`-th token (counting from 1).
  Released push(int32_t token, int64_t generated);

 private:
  const Tokenizer& tokenizer_;
  StreamDecoder decoder_;
  StopMatcher stop_;
  int64_t max_tokens_;
  bool ignore_eos_;
};

}  // namespace morphserve
