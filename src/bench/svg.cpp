#include "bench/svg.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace morphserve::bench::svg {
namespace {

std::string points_text(const Points& points) {
  std::string out;
  out.reserve(points.size() * 14);
  for (const auto& [x, y] : points) out += fmt::format("{:.1f},{:.1f} ", x, y);
  if (!out.empty()) out.pop_back();
  return out;
}

// Appends rather than `" " + std::string(attrs)`, which trips GCC 12's false -Wrestrict.
std::string with_space(std::string_view attrs) {
  std::string out;
  if (attrs.empty()) return out;
  out.reserve(attrs.size() + 1);
  out += ' ';
  out.append(attrs);
  return out;
}

}  // namespace

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // Control characters other than tab and newline are not allowed in XML 1.0 at all.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n') out += ' ';
        else out += c;
    }
  }
  return out;
}

double nice_ceil(double v) {
  if (!(v > 0) || !std::isfinite(v)) return 1.0;
  const double magnitude = std::pow(10.0, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * magnitude >= v * (1 - 1e-9)) return m * magnitude;
  }
  return 10.0 * magnitude;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  std::vector<double> ticks;
  if (!(hi > lo) || target < 1) return {lo};
  const double step = nice_ceil((hi - lo) / target);
  for (double t = std::ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step)
    ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  return ticks;
}

std::string tick_label(double v) { return fmt::format("{:g}", v); }

void Canvas::line(double x1, double y1, double x2, double y2, std::string_view stroke, double width,
                  std::string_view attrs) {
  out_ += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" stroke-width=\"{}\"{}/>\n",
                      x1, y1, x2, y2, stroke, width, with_space(attrs));
}

void Canvas::rect(double x, double y, double w, double h, std::string_view fill, std::string_view attrs) {
  out_ += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"{}/>\n", x, y,
                      std::max(w, 0.0), std::max(h, 0.0), fill, with_space(attrs));
}

void Canvas::circle(double cx, double cy, double r, std::string_view fill) {
  out_ += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"{}\" fill=\"{}\"/>\n", cx, cy, r, fill);
}

void Canvas::text(double x, double y, std::string_view content, std::string_view attrs) {
  out_ += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\"{}>{}</text>\n", x, y, with_space(attrs), escape(content));
}

void Canvas::polyline(const Points& points, std::string_view stroke, double width, std::string_view attrs) {
  if (points.empty()) return;
  out_ += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\"{}/>\n",
                      points_text(points), stroke, width, with_space(attrs));
}

void Canvas::polygon(const Points& points, std::string_view fill, std::string_view attrs) {
  if (points.empty()) return;
  out_ += fmt::format("<polygon points=\"{}\" fill=\"{}\"{}/>\n", points_text(points), fill, with_space(attrs));
}

}  // namespace morphserve::bench::svg
