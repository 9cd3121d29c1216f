#include "quant/precision_map.h"

#include <charconv>

#include <fmt/format.h>

#include "core/error.h"

namespace morphserve {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int parse_layer(std::string_view text, std::string_view item, int n_layers) {
  int value = -1;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    fail<InvalidArgument>("precision item '{}': '{}' is not a layer number", item, text);
  }
  if (value < 0 || value >= n_layers) {
    fail<InvalidArgument>("precision item '{}': layer {} does not exist (the model has layers 0-{})", item, value,
                          n_layers - 1);
  }
  return value;
}

}  // namespace

PrecisionMap parse_precision_map(std::string_view spec, int n_layers) {
  PrecisionMap map(static_cast<size_t>(std::max(0, n_layers)));
  spec = trim(spec);
  if (spec.empty()) return map;
  while (!spec.empty()) {
    const size_t comma = spec.find(',');
    const std::string_view item = trim(spec.substr(0, comma));
    spec = comma == std::string_view::npos ? std::string_view{} : spec.substr(comma + 1);
    const size_t colon = item.find(':');
    if (colon == std::string_view::npos) {
      fail<InvalidArgument>("precision item '{}' must look like RANGE:FORMAT (e.g. all:w4 or 0-3:w8)", item);
    }
    const std::string_view range = trim(item.substr(0, colon));
    const std::string_view format = trim(item.substr(colon + 1));
    const auto type = parse_dtype(format);
    if (!type) fail<InvalidArgument>("precision item '{}': unknown format '{}' (use f32, f16, bf16, w8 or w4)", item, format);
    int first = 0;
    int last = n_layers - 1;
    if (range != "all") {
      const size_t dash = range.find('-');
      if (dash == std::string_view::npos) {
        first = last = parse_layer(range, item, n_layers);
      } else {
        first = parse_layer(trim(range.substr(0, dash)), item, n_layers);
        last = parse_layer(trim(range.substr(dash + 1)), item, n_layers);
        if (first > last) fail<InvalidArgument>("precision item '{}': range {}-{} is backwards", item, first, last);
      }
    }
    for (int l = first; l <= last; ++l) map[static_cast<size_t>(l)] = *type;
  }
  return map;
}

std::string format_precision_map(const PrecisionMap& map) {
  std::string out;
  size_t i = 0;
  while (i < map.size()) {
    if (!map[i]) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j + 1 < map.size() && map[j + 1] == map[i]) ++j;
    if (!out.empty()) out += ',';
    out += i == j ? fmt::format("{}:{}", i, dtype_name(*map[i])) : fmt::format("{}-{}:{}", i, j, dtype_name(*map[i]));
    i = j + 1;
  }
  return out;
}

}  // namespace morphserve
