#include "bench/trace_loader.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace morphserve::bench {
namespace {

constexpr std::string_view kAzureHeader = "TIMESTAMP,ContextTokens,GeneratedTokens";
constexpr std::string_view kBurstHeader = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type";

// A row before sorting and re-basing: its time in seconds from any fixed origin.
struct Row {
  double seconds = 0.0;
  int64_t prompt = 0;
  int64_t output = 0;
};

struct Line {
  size_t number = 0;  // 1-based, as an editor shows it
  std::string_view text;
};

// Where an error happened; every message names the file and the line so the user can look.
struct Where {
  const std::string& name;
  size_t line;
  [[noreturn]] void fail(const std::string& problem) const {
    morphserve::fail<InvalidArgument>("{}: line {}: {}", name, line, problem);
  }
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Lines without their CR (the Azure files are CRLF) and without blank ones; the last line needs
// no newline (the Azure files have none after their last row).
std::vector<Line> split_lines(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // a UTF-8 BOM from spreadsheet exports
  std::vector<Line> lines;
  size_t number = 0;
  while (!text.empty()) {
    ++number;
    const size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    line = trim(line);
    if (!line.empty()) lines.push_back({number, line});
  }
  return lines;
}

std::vector<std::string_view> split_csv(std::string_view line) {
  std::vector<std::string_view> fields;
  while (true) {
    const size_t comma = line.find(',');
    fields.push_back(trim(line.substr(0, comma)));
    if (comma == std::string_view::npos) return fields;
    line.remove_prefix(comma + 1);
  }
}

bool same_header(std::string_view line, std::string_view expected) {
  const auto a = split_csv(line);
  const auto b = split_csv(expected);
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].size() != b[i].size()) return false;
    for (size_t j = 0; j < a[i].size(); ++j) {
      if (std::tolower(static_cast<unsigned char>(a[i][j])) != std::tolower(static_cast<unsigned char>(b[i][j])))
        return false;
    }
  }
  return true;
}

std::string shorten(std::string_view s) {
  return s.size() <= 80 ? std::string(s) : std::string(s.substr(0, 77)) + "...";
}

int64_t parse_count(std::string_view field, std::string_view column, const Where& where) {
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
  if (field.empty()) where.fail(fmt::format("{} is empty", column));
  if (ec == std::errc::result_out_of_range) where.fail(fmt::format("{} '{}' is out of range", column, shorten(field)));
  if (ec != std::errc() || end != field.data() + field.size())
    where.fail(fmt::format("{} '{}' is not a whole number", column, shorten(field)));
  if (value < 0) where.fail(fmt::format("{} '{}' is negative", column, field));
  return value;
}

double parse_seconds(std::string_view field, std::string_view column, const Where& where) {
  double value = 0.0;
  const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
  if (field.empty()) where.fail(fmt::format("{} is empty", column));
  if (ec != std::errc() || end != field.data() + field.size() || !std::isfinite(value))
    where.fail(fmt::format("{} '{}' is not a finite number", column, shorten(field)));
  return value;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil): plain
// arithmetic, so no locale, timezone or DST can shift a trace's arrivals.
int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

struct Timestamp {
  int64_t seconds = 0;  // since 1970-01-01 00:00:00 of the trace's own (unstated) timezone
  int64_t nanos = 0;
};

// "2023-11-16 18:17:03.9799600": 0 to 9 fractional digits, a space or 'T' between date and time.
Timestamp parse_azure_timestamp(std::string_view s, const Where& where) {
  auto bad = [&](std::string_view why) {
    where.fail(fmt::format("TIMESTAMP '{}' {} (expected YYYY-MM-DD HH:MM:SS.fffffff)", shorten(s), why));
  };
  auto digits = [&](size_t pos, size_t n) {
    int64_t v = 0;
    for (size_t i = pos; i < pos + n; ++i) {
      if (i >= s.size() || s[i] < '0' || s[i] > '9') bad("is malformed");
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  if (s.size() < 19 || s[4] != '-' || s[7] != '-' || (s[10] != ' ' && s[10] != 'T') || s[13] != ':' ||
      s[16] != ':')
    bad("is malformed");
  const int64_t year = digits(0, 4), month = digits(5, 2), day = digits(8, 2);
  const int64_t hour = digits(11, 2), minute = digits(14, 2), second = digits(17, 2);
  static constexpr int kDaysInMonth[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (month < 1 || month > 12) bad("has no such month");
  if (day < 1 || day > kDaysInMonth[month - 1] + (month == 2 && leap)) bad("has no such day");
  if (hour > 23 || minute > 59 || second > 60) bad("has no such time of day");
  int64_t nanos = 0;
  if (s.size() > 19) {
    const size_t frac = s.size() - 20;
    if (s[19] != '.' || frac == 0 || frac > 9) bad("has a malformed fraction of a second");
    nanos = digits(20, frac);
    for (size_t i = frac; i < 9; ++i) nanos *= 10;
  }
  return {days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second, nanos};
}

void expect_fields(const std::vector<std::string_view>& fields, size_t n, const Where& where) {
  if (fields.size() < n) where.fail(fmt::format("truncated row: expected {} fields, found {}", n, fields.size()));
  if (fields.size() > n) where.fail(fmt::format("expected {} fields, found {}", n, fields.size()));
}

void expect_header(const Line& header, std::string_view expected, const std::string& name) {
  if (!same_header(header.text, expected))
    Where{name, header.number}.fail(fmt::format("expected the header '{}', found '{}'", expected, shorten(header.text)));
}

std::vector<Row> parse_azure(const std::vector<Line>& lines, const std::string& name) {
  expect_header(lines[0], kAzureHeader, name);
  std::vector<Row> rows;
  rows.reserve(lines.size() - 1);
  Timestamp origin;
  for (size_t i = 1; i < lines.size(); ++i) {
    const Where where{name, lines[i].number};
    const auto fields = split_csv(lines[i].text);
    expect_fields(fields, 3, where);
    const Timestamp t = parse_azure_timestamp(fields[0], where);
    if (rows.empty()) origin = t;
    // Differences in integers first: seconds since 1970 in nanoseconds would lose the last digits
    // in a double.
    const double seconds = static_cast<double>(t.seconds - origin.seconds) +
                           static_cast<double>(t.nanos - origin.nanos) * 1e-9;
    rows.push_back({seconds, parse_count(fields[1], "ContextTokens", where), parse_count(fields[2], "GeneratedTokens", where)});
  }
  return rows;
}

std::vector<Row> parse_burstgpt(const std::vector<Line>& lines, const std::string& name) {
  expect_header(lines[0], kBurstHeader, name);
  std::vector<Row> rows;
  rows.reserve(lines.size() - 1);
  for (size_t i = 1; i < lines.size(); ++i) {
    const Where where{name, lines[i].number};
    const auto fields = split_csv(lines[i].text);
    expect_fields(fields, 6, where);
    const double seconds = parse_seconds(fields[0], "Timestamp", where);
    const int64_t prompt = parse_count(fields[2], "Request tokens", where);
    const int64_t output = parse_count(fields[3], "Response tokens", where);
    parse_count(fields[4], "Total tokens", where);  // validated only: the replay needs the parts
    // BurstGPT logs failed requests with zero response tokens; they were never served, so
    // replaying them would ask the server for work the original never did.
    if (output == 0) continue;
    rows.push_back({seconds, prompt, output});
  }
  return rows;
}

int64_t json_count(const nlohmann::json& object, const char* key, const Where& where) {
  const auto it = object.find(key);
  if (it == object.end()) where.fail(fmt::format("missing \"{}\"", key));
  if (it->is_number_unsigned()) {
    const auto v = it->get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      where.fail(fmt::format("\"{}\" {} is out of range", key, v));
    return static_cast<int64_t>(v);
  }
  if (it->is_number_integer()) where.fail(fmt::format("\"{}\" {} is negative", key, it->get<int64_t>()));
  where.fail(fmt::format("\"{}\" must be a whole number, found {}", key, shorten(it->dump())));
}

std::vector<Row> parse_mooncake(const std::vector<Line>& lines, const std::string& name) {
  std::vector<Row> rows;
  rows.reserve(lines.size());
  for (const Line& line : lines) {
    const Where where{name, line.number};
    nlohmann::json object;
    try {
      object = nlohmann::json::parse(line.text);
    } catch (const nlohmann::json::exception& e) {
      where.fail(fmt::format("not a complete JSON object ({})", e.what()));
    }
    if (!object.is_object()) where.fail("expected a JSON object");
    const auto ts = object.find("timestamp");
    if (ts == object.end()) where.fail("missing \"timestamp\"");
    if (!ts->is_number() || !std::isfinite(ts->get<double>()))
      where.fail(fmt::format("\"timestamp\" must be a number of milliseconds, found {}", shorten(ts->dump())));
    rows.push_back({ts->get<double>() / 1000.0, json_count(object, "input_length", where),
                    json_count(object, "output_length", where)});
  }
  return rows;
}

TraceFormat detect(const Line& first, const std::string& name) {
  if (first.text.front() == '{') return TraceFormat::Mooncake;
  if (same_header(first.text, kAzureHeader)) return TraceFormat::Azure;
  if (same_header(first.text, kBurstHeader)) return TraceFormat::BurstGpt;
  Where{name, first.number}.fail(
      fmt::format("not a trace this tool knows: expected the Azure header '{}', the BurstGPT header '{}' or "
                  "Mooncake JSON lines, found '{}'",
                  kAzureHeader, kBurstHeader, shorten(first.text)));
}

}  // namespace

TraceFormat parse_trace_format(std::string_view name) {
  if (name == "auto") return TraceFormat::Auto;
  if (name == "azure") return TraceFormat::Azure;
  if (name == "burstgpt") return TraceFormat::BurstGpt;
  if (name == "mooncake") return TraceFormat::Mooncake;
  fail<InvalidArgument>("unknown trace format '{}' (expected auto, azure, burstgpt or mooncake)", name);
}

std::string_view trace_format_name(TraceFormat format) {
  switch (format) {
    case TraceFormat::Auto: return "auto";
    case TraceFormat::Azure: return "azure";
    case TraceFormat::BurstGpt: return "burstgpt";
    case TraceFormat::Mooncake: return "mooncake";
  }
  return "unknown";
}

Workload parse_trace(std::string_view text, const std::string& name, TraceFormat format) {
  const std::vector<Line> lines = split_lines(text);
  if (lines.empty()) fail<InvalidArgument>("{}: the trace is empty", name);
  if (format == TraceFormat::Auto) format = detect(lines[0], name);

  std::vector<Row> rows;
  switch (format) {
    case TraceFormat::Azure: rows = parse_azure(lines, name); break;
    case TraceFormat::BurstGpt: rows = parse_burstgpt(lines, name); break;
    case TraceFormat::Mooncake: rows = parse_mooncake(lines, name); break;
    case TraceFormat::Auto: break;
  }
  if (rows.empty()) fail<InvalidArgument>("{}: the trace has no requests", name);

  // Out-of-order rows are a logging artefact, not a reason to refuse a real trace: sort them
  // (stably, so equal times keep file order) and say so in the source the report shows.
  size_t out_of_order = 0;
  for (size_t i = 1; i < rows.size(); ++i) out_of_order += rows[i].seconds < rows[i - 1].seconds;
  if (out_of_order) std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.seconds < b.seconds; });

  const double origin = rows.front().seconds;
  // Every time is finite, but the distance between two may not be (-1e308 and 1e308 seconds);
  // an infinite arrival cannot be replayed.
  if (!std::isfinite(rows.back().seconds - origin)) {
    fail<InvalidArgument>("{}: the trace's times run from {} to {} seconds, too far apart to replay", name, origin,
                          rows.back().seconds);
  }

  Workload workload;
  workload.source = fmt::format("{}:{}", trace_format_name(format), name);
  if (out_of_order) workload.source += fmt::format(" ({} rows out of time order, sorted)", out_of_order);
  workload.requests.reserve(rows.size());
  for (const Row& row : rows) workload.requests.push_back({row.seconds - origin, row.prompt, row.output});
  return workload;
}

Workload load_trace(const std::string& path, TraceFormat format) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail<InvalidArgument>("{}: no such trace file", path);
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) fail<InvalidArgument>("{}: cannot open the trace ({})", path, std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();  // an empty file leaves text empty, which parse_trace reports
  if (in.bad()) fail<InvalidArgument>("{}: cannot read the trace ({})", path, std::strerror(errno));
  return parse_trace(text.str(), path, format);
}

}  // namespace morphserve::bench
