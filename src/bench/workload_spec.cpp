#include "bench/workload_spec.h"

#include "bench/shaping.h"
#include "bench/synthetic.h"
#include "bench/trace_loader.h"
#include "core/error.h"

namespace morphserve::bench {

namespace {

Workload load_source(const WorkloadSpec& w) {
  if (w.trace.empty() == w.synthetic.empty()) fail<InvalidArgument>("give exactly one of a trace file and a synthetic spec");
  if (!w.synthetic.empty() || is_synthetic_spec(w.trace)) {
    const std::string spec = !w.synthetic.empty() ? w.synthetic : w.trace;
    return generate_synthetic(parse_synthetic_spec(is_synthetic_spec(spec) ? spec : "synthetic:" + spec));
  }
  return load_trace(w.trace, parse_trace_format(w.trace_format));
}

}  // namespace

Workload build_workload(const WorkloadSpec& w) {
  Shaping s;
  if (!w.window.empty()) {
    const Window window = parse_window(w.window);
    s.window_start = window.start;
    s.window_length = window.length;
  }
  s.time_scale = w.time_scale;
  s.rate_scale = w.rate_scale;
  s.prompt_scale = w.prompt_scale;
  s.output_scale = w.output_scale;
  s.max_prompt = w.max_prompt;
  s.max_output = w.max_output;
  s.max_requests = w.max_requests;
  s.seed = w.seed;
  return shape(load_source(w), s);
}

}  // namespace morphserve::bench
