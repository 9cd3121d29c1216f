#include "engine/output_processor.h"

#include "model/tokenizer.h"

namespace morphserve {

OutputProcessor::OutputProcessor(const Tokenizer& tokenizer, const RequestParams& params)
    : tokenizer_(tokenizer),
      decoder_(tokenizer, /*strip_leading_space=*/false),
      stop_(params.stop),
      max_tokens_(params.max_tokens),
      ignore_eos_(params.ignore_eos) {}

OutputProcessor::Released OutputProcessor::push(int32_t token, int64_t generated) {
  Released out;
  // eos, eot, eom and the tokens llama.cpp ends generation at (e.g. <|eot_id|>, <|im_end|>).
  const bool is_eos = tokenizer_.is_end_of_generation(token) && !ignore_eos_;
  if (is_eos) {
    out.finish = FinishReason::Stop;  // the end token itself is not text
  } else {
    StopMatcher::Result released = stop_.push(decoder_.push(token));
    out.text = std::move(released.text);
    if (released.stopped) out.finish = FinishReason::Stop;
  }
  if (!out.finish && generated >= max_tokens_) out.finish = FinishReason::Length;
  // Ending for any other reason than a stop string: what the decoder and the stop matcher still
  // hold is text of the completion too.
  if (out.finish && (*out.finish != FinishReason::Stop || is_eos)) {
    StopMatcher::Result tail = stop_.push(decoder_.flush());
    out.text += tail.text;
    if (tail.stopped) {
      out.finish = FinishReason::Stop;  // the last bytes completed a stop string
    } else {
      out.text += stop_.flush();
    }
  }
  return out;
}

}  // namespace morphserve
