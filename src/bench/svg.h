#pragma once
// The little SVG the timeline needs: escaped text, 1-2-5 axis ticks and a string canvas. Plain
// elements only (no scripts, no external fonts or files) so the file opens anywhere.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace morphserve::bench::svg {

// Text safe inside an element or a double-quoted attribute.
std::string escape(std::string_view text);
// The smallest 1, 2 or 5 × 10^k at or above v (v > 0).
double nice_ceil(double v);
// Round ticks from lo to hi (inclusive), about `target` of them.
std::vector<double> nice_ticks(double lo, double hi, int target);
// A short label for a tick value: "3600", "0.5", "1e+06".
std::string tick_label(double v);

using Points = std::vector<std::pair<double, double>>;

class Canvas {
 public:
  // `attrs` are extra attributes written as given (callers pass only literals and numbers).
  void line(double x1, double y1, double x2, double y2, std::string_view stroke, double width = 1,
            std::string_view attrs = "");
  void rect(double x, double y, double w, double h, std::string_view fill, std::string_view attrs = "");
  void circle(double cx, double cy, double r, std::string_view fill);
  // `content` is escaped here.
  void text(double x, double y, std::string_view content, std::string_view attrs = "");
  void polyline(const Points& points, std::string_view stroke, double width = 1.5, std::string_view attrs = "");
  void polygon(const Points& points, std::string_view fill, std::string_view attrs = "");
  void raw(std::string_view element) { out_ += element; }
  const std::string& str() const { return out_; }

 private:
  std::string out_;
};

}  // namespace morphserve::bench::svg
