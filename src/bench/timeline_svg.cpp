#include "bench/timeline_svg.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>

#include <fmt/format.h>

#include "bench/svg.h"
#include "core/error.h"

namespace morphserve::bench {
namespace {

using svg::Canvas;
using svg::Points;

constexpr double kWidth = 1100, kLeft = 70, kRight = 180;  // the right margin holds the legends
constexpr double kPlotWidth = kWidth - kLeft - kRight;
constexpr double kPanelHeight = 110, kPanelGap = 40, kTitleHeight = 34, kBlockGap = 26;

// Colours from the usual Tableau palette, so the figure matches others people plot.
constexpr const char* kBlue = "#1f77b4";
constexpr const char* kOrange = "#ff7f0e";
constexpr const char* kGreen = "#2ca02c";
constexpr const char* kRed = "#d62728";
constexpr const char* kPurple = "#9467bd";
constexpr const char* kGray = "#7f7f7f";
constexpr const char* kDark = "#333333";
constexpr const char* kFailed = "#7f0000";

struct Legend {
  std::string label;
  std::string colour;
};

// One panel's frame: its place on the page and its y scale.
struct Frame {
  double top = 0;
  double time_max = 1;
  double y_lo = 0, y_hi = 1;
  bool log_y = false;

  double x(double t) const {
    return kLeft + (std::isfinite(t) ? std::clamp(t / time_max, 0.0, 1.0) : 0.0) * kPlotWidth;
  }
  double y(double v) const {
    double share = 0;
    if (log_y) share = (std::log10(std::max(v, y_lo)) - std::log10(y_lo)) / (std::log10(y_hi) - std::log10(y_lo));
    else share = (v - y_lo) / (y_hi - y_lo);
    return top + kPanelHeight - std::clamp(share, 0.0, 1.0) * kPanelHeight;
  }
};

std::optional<double> value(const ServerSample& s, const char* key) {
  const auto it = s.values.find(key);
  if (it == s.values.end() || !std::isfinite(it->second)) return std::nullopt;
  return it->second;
}

bool has_series(const BenchRun& run, std::initializer_list<const char*> keys) {
  for (const ServerSample& s : run.samples)
    for (const char* key : keys)
      if (value(s, key)) return true;
  return false;
}

// A step line through the samples that carry `key`: each value holds until the next sample.
Points steps(const BenchRun& run, const char* key, const Frame& f, const char* below = nullptr) {
  Points points;
  for (const ServerSample& s : run.samples) {
    auto v = value(s, key);
    if (!v) continue;
    const double base = below ? value(s, below).value_or(0.0) : 0.0;
    const double y = f.y(base + *v);
    if (!points.empty()) points.emplace_back(f.x(s.seconds), points.back().second);
    points.emplace_back(f.x(s.seconds), y);
  }
  return points;
}

void axes(Canvas& c, const Frame& f, const std::string& title, const std::vector<double>& y_ticks,
          const std::vector<Legend>& legend) {
  c.rect(kLeft, f.top, kPlotWidth, kPanelHeight, "none", "stroke=\"#bbbbbb\"");
  c.text(kLeft, f.top - 6, title, "font-weight=\"bold\"");
  for (double v : y_ticks) {
    const double y = f.y(v);
    c.line(kLeft, y, kLeft + kPlotWidth, y, "#eeeeee");
    c.line(kLeft - 4, y, kLeft, y, kDark);
    c.text(kLeft - 6, y + 4, svg::tick_label(v), "text-anchor=\"end\"");
  }
  for (double t : svg::nice_ticks(0, f.time_max, 10)) {
    const double x = f.x(t);
    c.line(x, f.top + kPanelHeight, x, f.top + kPanelHeight + 4, kDark);
    c.text(x, f.top + kPanelHeight + 15, svg::tick_label(t), "text-anchor=\"middle\"");
  }
  c.text(kLeft + kPlotWidth, f.top + kPanelHeight + 28, "time (s)", "text-anchor=\"end\" fill=\"#555555\"");
  double y = f.top + 10;
  for (const Legend& item : legend) {
    c.rect(kLeft + kPlotWidth + 12, y - 8, 10, 10, item.colour);
    c.text(kLeft + kPlotWidth + 27, y + 1, item.label);
    y += 16;
  }
}

// Y ranges shared by every arm, so their panels compare at a glance.
struct Scales {
  double bin = 1;  // seconds per arrivals bar
  double arrivals = 0, requests = 0, kv = 0, layers = 0;
  double ttft_lo = INFINITY, ttft_hi = 0;
};

// 0 up to a round number at or above `max_value`, ticked about four times.
Frame linear_frame(double top, double time_max, double max_value) {
  const double peak = std::max(max_value, 1.0);
  const double step = svg::nice_ceil(peak / 4);
  return {top, time_max, 0.0, std::ceil(peak / step - 1e-9) * step, false};
}

std::vector<double> arrival_rates(const BenchRun& run, double bin, double time_max) {
  std::vector<double> arrivals;
  for (const RequestRecord& r : run.records) arrivals.push_back(r.scheduled_seconds);
  if (arrivals.empty())
    for (const WorkloadRequest& r : run.workload.requests) arrivals.push_back(r.arrival_seconds);
  std::vector<double> per_second(static_cast<size_t>(std::ceil(time_max / bin)) + 1, 0.0);
  for (double t : arrivals)
    if (t >= 0 && t <= time_max) per_second[static_cast<size_t>(t / bin)] += 1.0 / bin;
  return per_second;
}

double max_sample(const BenchRun& run, std::initializer_list<const char*> keys, bool sum) {
  double peak = 0;
  for (const ServerSample& s : run.samples) {
    double total = 0;
    for (const char* key : keys) {
      const double v = value(s, key).value_or(0.0);
      total = sum ? total + v : std::max(total, v);
    }
    peak = std::max(peak, total);
  }
  return peak;
}

void widen(Scales& scales, const BenchRun& run, double time_max) {
  const auto rates = arrival_rates(run, scales.bin, time_max);
  for (double r : rates) scales.arrivals = std::max(scales.arrivals, r);
  scales.requests = std::max(scales.requests, max_sample(run, {"num_requests_running", "num_requests_waiting"}, false));
  scales.kv = std::max(scales.kv, max_sample(run, {"kv_blocks_total", "kv_blocks_used"}, false));
  scales.layers = std::max(scales.layers, max_sample(run, {"layers_quantized_w8", "layers_quantized_w4"}, true));
  for (const RequestRecord& r : run.records) {
    if (auto t = r.ttft(); t && *t > 0 && r.ok()) scales.ttft_lo = std::min(scales.ttft_lo, *t), scales.ttft_hi = std::max(scales.ttft_hi, *t);
  }
}

void arrivals_panel(Canvas& c, const BenchRun& run, const Scales& scales, Frame f) {
  const std::vector<double> per_second = arrival_rates(run, scales.bin, f.time_max);
  f = linear_frame(f.top, f.time_max, scales.arrivals);
  axes(c, f, fmt::format("arrivals per second ({} s bins)", svg::tick_label(scales.bin)), svg::nice_ticks(0, f.y_hi, 4),
       {{"arrivals/s", kGray}});
  for (size_t i = 0; i < per_second.size(); ++i) {
    if (per_second[i] <= 0) continue;
    const double x0 = f.x(static_cast<double>(i) * scales.bin), x1 = f.x(static_cast<double>(i + 1) * scales.bin);
    c.rect(x0, f.y(per_second[i]), std::max(x1 - x0 - 0.3, 0.5), f.y(0) - f.y(per_second[i]), kGray);
  }
}

// TTFTs span milliseconds to tens of seconds under pressure, so the y axis is logarithmic.
void ttft_panel(Canvas& c, const BenchRun& run, const Slo& slo, const Scales& scales, Frame f) {
  double lo = scales.ttft_lo, hi = scales.ttft_hi;
  if (slo.ttft > 0) lo = std::min(lo, slo.ttft), hi = std::max(hi, slo.ttft);
  if (!std::isfinite(lo)) lo = 0.01, hi = 1;
  f.log_y = true;
  f.y_lo = std::pow(10.0, std::floor(std::log10(lo)));
  f.y_hi = std::max(std::pow(10.0, std::ceil(std::log10(hi))), f.y_lo * 10);
  std::vector<double> decades;
  for (double d = f.y_lo; d <= f.y_hi * 1.0001; d *= 10) decades.push_back(d);
  std::vector<Legend> legend = {{"TTFT", kBlue}};
  if (slo.ttft > 0) legend.push_back({"TTFT over SLO", kRed}), legend.push_back({"SLO", kRed});
  legend.push_back({"failed request", kFailed});
  axes(c, f, "time to first token (s, log scale) at send time", decades, legend);
  for (const RequestRecord& r : run.records) {
    if (!r.ok()) {
      // Failed requests have no TTFT worth plotting; a mark on the top edge shows when they were sent.
      const double x = f.x(r.send_seconds);
      c.polygon({{x - 3, f.top}, {x + 3, f.top}, {x, f.top + 5}}, kFailed);
      continue;
    }
    const auto t = r.ttft();
    if (!t) continue;
    c.circle(f.x(r.send_seconds), f.y(*t), 1.8, slo.ttft > 0 && *t > slo.ttft ? kRed : kBlue);
  }
  if (slo.ttft > 0) {
    const double y = f.y(slo.ttft);
    c.line(kLeft, y, kLeft + kPlotWidth, y, kRed, 1.2, "stroke-dasharray=\"6 3\" class=\"slo-ttft\"");
    c.text(kLeft + kPlotWidth - 4, y - 4, fmt::format("TTFT SLO {} ms", svg::tick_label(slo.ttft * 1000)),
           "text-anchor=\"end\" fill=\"#d62728\"");
  }
}

void requests_panel(Canvas& c, const BenchRun& run, const Scales& scales, Frame f) {
  f = linear_frame(f.top, f.time_max, scales.requests);
  axes(c, f, "requests on the server", svg::nice_ticks(0, f.y_hi, 4), {{"running", kGreen}, {"waiting", kOrange}});
  c.polyline(steps(run, "num_requests_running", f), kGreen);
  c.polyline(steps(run, "num_requests_waiting", f), kOrange);
}

void kv_panel(Canvas& c, const BenchRun& run, const Scales& scales, Frame f) {
  f = linear_frame(f.top, f.time_max, scales.kv);
  axes(c, f, "KV cache blocks", svg::nice_ticks(0, f.y_hi, 4), {{"capacity", kDark}, {"used", kBlue}});
  Points used = steps(run, "kv_blocks_used", f);
  if (!used.empty()) {
    Points area = used;
    area.emplace_back(used.back().first, f.y(0));
    area.emplace_back(used.front().first, f.y(0));
    c.polygon(area, kBlue, "fill-opacity=\"0.35\"");
    c.polyline(used, kBlue, 1);
  }
  c.polyline(steps(run, "kv_blocks_total", f), kDark, 1.5);
}

// W8 at the bottom, W4 stacked on it: the top edge is the number of layers not at full precision.
void layers_panel(Canvas& c, const BenchRun& run, const Scales& scales, Frame f) {
  f = linear_frame(f.top, f.time_max, scales.layers);
  axes(c, f, "layers quantized", svg::nice_ticks(0, f.y_hi, 4), {{"W8", kPurple}, {"W4", kOrange}});
  auto band = [&](const Points& upper, const Points& lower, const char* colour) {
    if (upper.empty()) return;
    Points area = upper;
    if (lower.empty()) {
      area.emplace_back(upper.back().first, f.y(0));
      area.emplace_back(upper.front().first, f.y(0));
    } else {
      area.insert(area.end(), lower.rbegin(), lower.rend());
    }
    c.polygon(area, colour, "fill-opacity=\"0.6\"");
  };
  const Points w8 = steps(run, "layers_quantized_w8", f);
  const Points w4_top = steps(run, "layers_quantized_w4", f, "layers_quantized_w8");
  band(w8, {}, kPurple);
  band(w4_top, w8, kOrange);
}

double time_extent(const BenchRun& run) {
  double t = 0;
  // A hand-edited run file may hold NaN or infinity; those must not stretch the axis to nothing.
  auto extend = [&](double v) {
    if (std::isfinite(v)) t = std::max(t, v);
  };
  extend(run.duration_seconds);
  for (const WorkloadRequest& r : run.workload.requests) extend(r.arrival_seconds);
  for (const RequestRecord& r : run.records) extend(r.scheduled_seconds), extend(r.send_seconds), extend(r.end_seconds);
  for (const ServerSample& s : run.samples) extend(s.seconds);
  return t;
}

}  // namespace

std::string render_timeline_svg(const std::vector<std::pair<std::string, const BenchRun*>>& runs, const Slo& slo) {
  double time_max = 1;
  for (const auto& [name, run] : runs) {
    if (!run) fail<InvalidArgument>("timeline: the run of arm '{}' is missing", name);
    time_max = std::max(time_max, time_extent(*run));
  }
  // Every arm shares one time axis, so equal times line up across the stacked blocks,
  // ending on a round tick.
  const double step = svg::nice_ceil(time_max / 10);
  const double axis_max = std::ceil(time_max / step - 1e-9) * step;
  Scales scales;
  // Bins of at least a second, and few enough that each bar stays visible.
  scales.bin = std::max(1.0, svg::nice_ceil(axis_max / 200));
  for (const auto& [name, run] : runs) widen(scales, *run, axis_max);

  Canvas body;
  double top = 10;
  for (const auto& arm : runs) {
    // A named pointer, not a structured binding: lambdas below capture it (C++20 allows capturing
    // bindings, clang 14 does not yet).
    const std::string& name = arm.first;
    const auto& run = arm.second;
    using Panel = std::function<void(Canvas&, Frame)>;
    std::vector<Panel> panels;
    panels.push_back([&](Canvas& c, Frame f) { arrivals_panel(c, *run, scales, f); });
    if (!run->records.empty()) panels.push_back([&](Canvas& c, Frame f) { ttft_panel(c, *run, slo, scales, f); });
    if (has_series(*run, {"num_requests_running", "num_requests_waiting"}))
      panels.push_back([&](Canvas& c, Frame f) { requests_panel(c, *run, scales, f); });
    if (has_series(*run, {"kv_blocks_total", "kv_blocks_used"}))
      panels.push_back([&](Canvas& c, Frame f) { kv_panel(c, *run, scales, f); });
    if (has_series(*run, {"layers_quantized_w8", "layers_quantized_w4"}))
      panels.push_back([&](Canvas& c, Frame f) { layers_panel(c, *run, scales, f); });

    body.text(kLeft, top + 18, name, "font-size=\"16\" font-weight=\"bold\" class=\"arm-title\"");
    top += kTitleHeight;
    for (const Panel& panel : panels) {
      top += 14;  // the panel's own title
      panel(body, Frame{top, axis_max, 0, 1, false});
      top += kPanelHeight + kPanelGap - 14;
    }
    top += kBlockGap;
  }
  if (runs.empty()) {
    body.text(kLeft, top + 18, "no runs to plot");
    top += 30;
  }
  const double height = std::ceil(top);
  std::string out = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"11\">\n",
      kWidth, height);
  out += fmt::format("<rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"white\"/>\n", kWidth, height);
  out += body.str();
  out += "</svg>\n";
  return out;
}

}  // namespace morphserve::bench
