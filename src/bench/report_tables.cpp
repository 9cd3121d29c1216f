// The human-readable half of report.h: terminal summary and markdown comparison.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bench/report.h"

namespace morphserve::bench {
namespace {

// "-" rather than "nan": an unmeasured value should read as absent, not as a bug.
std::string fixed(double v, int decimals, std::string_view unit = "") {
  if (!std::isfinite(v)) return "-";
  return fmt::format("{:.{}f}{}", v, decimals, unit);
}

std::string ms(double seconds) { return fixed(seconds * 1000.0, 1); }
std::string percent(double share) { return fixed(share * 100.0, 1, " %"); }

std::string slo_text(const Slo& slo) {
  std::vector<std::string> parts;
  if (slo.ttft > 0) parts.push_back(fmt::format("TTFT <= {} ms", ms(slo.ttft)));
  if (slo.tpot > 0) parts.push_back(fmt::format("TPOT <= {} ms", ms(slo.tpot)));
  if (parts.empty()) return "none set (only failed requests count as violations)";
  return parts.size() == 1 ? parts[0] : parts[0] + ", " + parts[1];
}

// A pipe inside a cell would end it early in markdown.
std::string cell(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += '\\';
    out += (c == '\n' || c == '\r') ? ' ' : c;
  }
  return out;
}

}  // namespace

std::string summary_table(const BenchSummary& s, const Slo& slo) {
  std::string out;
  out += fmt::format("Requests      {} sent, {} completed, {} failed, in {} s\n", s.requests, s.completed, s.errors,
                     fixed(s.duration_seconds, 1));
  out += fmt::format("Throughput    {} req/s, {} output tok/s, {} input tok/s\n", fixed(s.throughput_rps, 2),
                     fixed(s.output_tokens_per_second, 1), fixed(s.input_tokens_per_second, 1));
  out += fmt::format("SLO           {}\n", slo_text(slo));
  out += fmt::format("Violations    {}   goodput {} req/s\n", percent(s.slo_violation_rate), fixed(s.goodput_rps, 2));
  if (std::isfinite(s.mean_layers_quantized) || std::isfinite(s.max_kv_blocks_total)) {
    out += fmt::format("Server        layers quantized mean {} max {}, KV blocks max {}, swaps down {} up {}\n",
                       fixed(s.mean_layers_quantized, 2), fixed(s.max_layers_quantized, 0),
                       fixed(s.max_kv_blocks_total, 0), fixed(s.layer_swaps_down, 0), fixed(s.layer_swaps_up, 0));
  }
  out += fmt::format("\n{:<6}{:>8}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}\n", "ms", "count", "mean", "P50", "P90", "P95",
                     "P99", "max");
  const std::pair<const char*, const Percentiles*> rows[] = {{"TTFT", &s.ttft}, {"TPOT", &s.tpot}, {"ITL", &s.itl}, {"E2E", &s.e2e}};
  for (const auto& [name, p] : rows) {
    out += fmt::format("{:<6}{:>8}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}\n", name, p->count, ms(p->mean), ms(p->p50),
                       ms(p->p90), ms(p->p95), ms(p->p99), ms(p->max));
  }
  return out;
}

std::string comparison_table(const std::vector<std::pair<std::string, BenchSummary>>& arms, const Slo& slo,
                             const std::vector<ExtraColumn>& extra) {
  std::vector<std::string> header = {"arm", "SLO violations", "P95 TTFT", "P99 TPOT", "throughput", "goodput",
                                     "mean layers quantized"};
  for (const ExtraColumn& column : extra) header.push_back(cell(column.name));
  std::vector<std::vector<std::string>> rows;
  for (size_t a = 0; a < arms.size(); ++a) {
    const BenchSummary& s = arms[a].second;
    std::vector<std::string> row = {cell(arms[a].first),
                                    percent(s.slo_violation_rate),
                                    fixed(s.ttft.p95 * 1000.0, 1, " ms"),
                                    fixed(s.tpot.p99 * 1000.0, 1, " ms"),
                                    fixed(s.throughput_rps, 2, " req/s"),
                                    fixed(s.goodput_rps, 2, " req/s"),
                                    fixed(s.mean_layers_quantized, 2)};
    for (const ExtraColumn& column : extra) row.push_back(a < column.values.size() ? cell(column.values[a]) : "-");
    rows.push_back(std::move(row));
  }
  // Padded columns keep the markdown readable as plain text too.
  std::vector<size_t> width(header.size(), 3);
  for (size_t c = 0; c < header.size(); ++c) {
    width[c] = std::max(width[c], header[c].size());
    for (const auto& row : rows) width[c] = std::max(width[c], row[c].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out = "|";
    for (size_t c = 0; c < cells.size(); ++c)
      out += c == 0 ? fmt::format(" {:<{}} |", cells[c], width[c]) : fmt::format(" {:>{}} |", cells[c], width[c]);
    return out + "\n";
  };
  std::string out = fmt::format("SLO: {}\n\n", slo_text(slo));
  out += line(header);
  out += "|";
  for (size_t c = 0; c < header.size(); ++c)
    out += c == 0 ? fmt::format(" {} |", std::string(width[c], '-')) : fmt::format(" {}: |", std::string(width[c] - 1, '-'));
  out += "\n";
  for (const auto& row : rows) out += line(row);
  return out;
}

}  // namespace morphserve::bench
