#include "bench/prometheus_text.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>

namespace morphserve::bench {

namespace {

bool name_char(char c, bool first) {
  const bool alpha = std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':';
  return first ? alpha : alpha || std::isdigit(static_cast<unsigned char>(c));
}

void skip_spaces(std::string_view s, size_t& i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
}

std::optional<double> parse_value(std::string_view text) {
  if (text == "NaN" || text == "nan") return std::numeric_limits<double>::quiet_NaN();
  if (text == "+Inf" || text == "Inf" || text == "+inf" || text == "inf") return std::numeric_limits<double>::infinity();
  if (text == "-Inf" || text == "-inf") return -std::numeric_limits<double>::infinity();
  const std::string copy(text);  // strtod needs a terminated string
  char* end = nullptr;
  const double v = std::strtod(copy.c_str(), &end);
  if (copy.empty() || end != copy.c_str() + copy.size()) return std::nullopt;
  return v;
}

// Reads `{a="x",b="y"}` starting at s[i] == '{'; false when malformed.
bool parse_labels(std::string_view s, size_t& i, std::map<std::string, std::string>& labels) {
  ++i;
  for (;;) {
    skip_spaces(s, i);
    if (i < s.size() && s[i] == '}') {
      ++i;
      return true;
    }
    const size_t start = i;
    while (i < s.size() && name_char(s[i], i == start)) ++i;
    if (i == start) return false;
    std::string key(s.substr(start, i - start));
    skip_spaces(s, i);
    if (i >= s.size() || s[i] != '=') return false;
    ++i;
    skip_spaces(s, i);
    if (i >= s.size() || s[i] != '"') return false;
    ++i;
    std::string value;
    for (;; ++i) {
      if (i >= s.size()) return false;
      if (s[i] == '"') break;
      if (s[i] == '\\' && i + 1 < s.size()) {
        ++i;
        value += s[i] == 'n' ? '\n' : s[i];
      } else {
        value += s[i];
      }
    }
    ++i;  // the closing quote
    labels[std::move(key)] = std::move(value);
    skip_spaces(s, i);
    if (i < s.size() && s[i] == ',') ++i;
  }
}

std::optional<PrometheusSample> parse_line(std::string_view line) {
  size_t i = 0;
  skip_spaces(line, i);
  if (i >= line.size() || line[i] == '#') return std::nullopt;
  const size_t start = i;
  while (i < line.size() && name_char(line[i], i == start)) ++i;
  if (i == start) return std::nullopt;
  PrometheusSample sample;
  sample.name = std::string(line.substr(start, i - start));
  skip_spaces(line, i);
  if (i < line.size() && line[i] == '{' && !parse_labels(line, i, sample.labels)) return std::nullopt;
  skip_spaces(line, i);
  size_t end = i;
  while (end < line.size() && line[end] != ' ' && line[end] != '\t') ++end;
  const std::optional<double> value = parse_value(line.substr(i, end - i));
  if (!value) return std::nullopt;
  sample.value = *value;
  return sample;
}

}  // namespace

std::vector<PrometheusSample> parse_prometheus_text(std::string_view text) {
  std::vector<PrometheusSample> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (auto sample = parse_line(line)) out.push_back(std::move(*sample));
    pos = eol + 1;
  }
  return out;
}

}  // namespace morphserve::bench
