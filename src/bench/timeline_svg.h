#pragma once
// One picture of one or more runs on a shared time axis, to see morphing react to load: per run
// (arm), stacked panels of (a) arrivals per second, (b) each request's TTFT at its send time
// against the SLO, (c) running and waiting requests, (d) KV blocks in total and in use, and
// (e) layers quantized to W8 and W4. Panels whose series the server never reported are left out.
#include <string>
#include <utility>
#include <vector>

#include "bench/request_record.h"
#include "bench/stats.h"

namespace morphserve::bench {

// A self-contained SVG document (no scripts, no external fonts or files); arm names are escaped.
// InvalidArgument for a null run.
std::string render_timeline_svg(const std::vector<std::pair<std::string, const BenchRun*>>& runs, const Slo& slo);

}  // namespace morphserve::bench
