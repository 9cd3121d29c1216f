#include "morph/morph_order.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace morphserve {

namespace {

using nlohmann::json;
// Written in the documented field order, so a person reads the order first.
using ordered = nlohmann::ordered_json;

// NaN has no JSON spelling: it is written as null and read back as NaN.
ordered score(double v) { return std::isnan(v) ? ordered(nullptr) : ordered(v); }

double read_score(const json& v, const std::string& origin, std::string_view what) {
  if (v.is_null()) return std::numeric_limits<double>::quiet_NaN();
  if (!v.is_number()) fail<InvalidArgument>("{}: {} must be a number", origin, what);
  return v.get<double>();
}

const json& field(const json& object, const char* name, const std::string& origin, std::string_view where) {
  const auto it = object.find(name);
  if (it == object.end()) fail<InvalidArgument>("{}: {} has no \"{}\"", origin, where, name);
  return *it;
}

int64_t read_int(const json& v, const std::string& origin, std::string_view what) {
  if (!v.is_number_integer()) fail<InvalidArgument>("{}: {} must be an integer", origin, what);
  return v.get<int64_t>();
}

// Every layer exactly once: anything else would leave a layer never swapped, or swap one twice.
std::vector<int> read_order(const json& order, int64_t n_layers, const std::string& origin) {
  if (!order.is_array()) fail<InvalidArgument>("{}: \"order\" must be an array of layer indices", origin);
  if (static_cast<int64_t>(order.size()) != n_layers) {
    fail<InvalidArgument>("{}: \"order\" lists {} layers but \"n_layers\" is {}; it must name each layer once",
                          origin, order.size(), n_layers);
  }
  std::vector<int64_t> layers;
  for (const json& v : order) layers.push_back(read_int(v, origin, "every entry of \"order\""));
  if (const std::string problem = order_problem(layers, n_layers); !problem.empty()) {
    fail<InvalidArgument>("{}: \"order\" {}", origin, problem);
  }
  return std::vector<int>(layers.begin(), layers.end());
}

}  // namespace

std::string order_problem(const std::vector<int64_t>& order, int64_t n_layers) {
  if (static_cast<int64_t>(order.size()) != n_layers) {
    return fmt::format("lists {} layers but the model has {}; it must name each layer once", order.size(), n_layers);
  }
  std::vector<bool> seen(static_cast<size_t>(n_layers), false);
  for (const int64_t l : order) {
    if (l < 0 || l >= n_layers) return fmt::format("names layer {}, outside the model's layers 0..{}", l, n_layers - 1);
    if (seen[static_cast<size_t>(l)]) return fmt::format("names layer {} twice; it must be a permutation of 0..{}", l, n_layers - 1);
    seen[static_cast<size_t>(l)] = true;
  }
  return {};
}

std::vector<int> front_to_back_order(int n_layers) {
  std::vector<int> order(static_cast<size_t>(std::max(0, n_layers)));
  std::iota(order.begin(), order.end(), 0);
  return order;
}

std::string morph_order_json(const ImportanceProfile& profile, const CalibrationInfo& info) {
  ordered layers = ordered::array();
  for (const LayerImportance& l : profile.layers) {
    layers.push_back({{"layer", l.layer},
                      {"lts", score(l.lts)},
                      {"lrs", score(l.lrs)},
                      {"mds", score(l.mds)},
                      {"lis", score(l.lis)},
                      {"rank", l.rank}});
  }
  ordered steps = ordered::array();
  for (const std::vector<double>& step : profile.mds_steps) {
    ordered row = ordered::array();
    for (double v : step) row.push_back(score(v));
    steps.push_back(std::move(row));
  }
  const ordered doc = {{"model", info.model},
                       {"n_layers", profile.layers.size()},
                       {"order", profile.order},
                       {"layers", std::move(layers)},
                       {"mds_steps", std::move(steps)},
                       {"calibration",
                        {{"file", info.file},
                         {"tokens", profile.n_tokens},
                         {"windows", profile.n_windows},
                         {"ctx", profile.ctx},
                         {"skip_tokens", info.skip_tokens}}}};
  return doc.dump(2) + "\n";
}

void write_morph_order(const std::string& path, const ImportanceProfile& profile, const CalibrationInfo& info) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail<InvalidArgument>("cannot write the morph order file {}", path);
    out << morph_order_json(profile, info);
    if (!out.flush()) fail<InvalidArgument>("cannot write the morph order file {}", path);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    fail<InvalidArgument>("cannot write the morph order file {}", path);
  }
}

MorphOrderFile parse_morph_order(std::string_view text, const std::string& origin) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    fail<InvalidArgument>("{}: not a morph order file (invalid JSON: {})", origin, e.what());
  }
  if (!doc.is_object()) fail<InvalidArgument>("{}: not a morph order file (expected a JSON object)", origin);

  MorphOrderFile file;
  const int64_t n_layers = read_int(field(doc, "n_layers", origin, "the file"), origin, "\"n_layers\"");
  if (n_layers < 1) fail<InvalidArgument>("{}: \"n_layers\" must be at least 1, got {}", origin, n_layers);
  ImportanceProfile& p = file.profile;
  p.order = read_order(field(doc, "order", origin, "the file"), n_layers, origin);

  // The rest is optional, so a hand-written {"n_layers": N, "order": [...]} is a valid file.
  if (const auto it = doc.find("model"); it != doc.end() && it->is_string()) file.info.model = *it;
  p.layers.resize(static_cast<size_t>(n_layers));
  for (int l = 0; l < n_layers; ++l) p.layers[static_cast<size_t>(l)].layer = l;
  for (size_t r = 0; r < p.order.size(); ++r) p.layers[static_cast<size_t>(p.order[r])].rank = static_cast<int>(r);
  if (const auto it = doc.find("layers"); it != doc.end()) {
    if (!it->is_array()) fail<InvalidArgument>("{}: \"layers\" must be an array", origin);
    for (const json& entry : *it) {
      if (!entry.is_object()) fail<InvalidArgument>("{}: every entry of \"layers\" must be an object", origin);
      const int64_t l = read_int(field(entry, "layer", origin, "an entry of \"layers\""), origin, "\"layer\"");
      if (l < 0 || l >= n_layers) fail<InvalidArgument>("{}: \"layers\" has an entry for layer {}, outside 0..{}", origin, l, n_layers - 1);
      LayerImportance& li = p.layers[static_cast<size_t>(l)];
      li.lts = read_score(field(entry, "lts", origin, "an entry of \"layers\""), origin, "\"lts\"");
      li.lrs = read_score(field(entry, "lrs", origin, "an entry of \"layers\""), origin, "\"lrs\"");
      li.mds = read_score(field(entry, "mds", origin, "an entry of \"layers\""), origin, "\"mds\"");
      li.lis = read_score(field(entry, "lis", origin, "an entry of \"layers\""), origin, "\"lis\"");
    }
  }
  if (const auto it = doc.find("mds_steps"); it != doc.end() && it->is_array()) {
    for (const json& row : *it) {
      if (!row.is_array()) fail<InvalidArgument>("{}: every entry of \"mds_steps\" must be an array", origin);
      std::vector<double> step;
      for (const json& v : row) step.push_back(read_score(v, origin, "an entry of \"mds_steps\""));
      p.mds_steps.push_back(std::move(step));
    }
  }
  if (const auto it = doc.find("calibration"); it != doc.end() && it->is_object()) {
    const json& cal = *it;
    if (const auto f = cal.find("file"); f != cal.end() && f->is_string()) file.info.file = *f;
    if (const auto f = cal.find("tokens"); f != cal.end()) p.n_tokens = read_int(*f, origin, "\"calibration.tokens\"");
    if (const auto f = cal.find("windows"); f != cal.end()) p.n_windows = read_int(*f, origin, "\"calibration.windows\"");
    if (const auto f = cal.find("ctx"); f != cal.end()) p.ctx = read_int(*f, origin, "\"calibration.ctx\"");
    if (const auto f = cal.find("skip_tokens"); f != cal.end()) {
      file.info.skip_tokens = read_int(*f, origin, "\"calibration.skip_tokens\"");
    }
  }
  return file;
}

std::vector<int> load_morph_order(const std::string& path, int n_layers) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail<InvalidArgument>("cannot read the morph order file {}", path);
  std::ostringstream text;
  text << in.rdbuf();
  const MorphOrderFile file = parse_morph_order(text.str(), path);
  if (static_cast<int>(file.profile.order.size()) != n_layers) {
    fail<InvalidArgument>("{}: the order was profiled for a model with {} layers, but this model has {} "
                          "(run `morphserve profile` on this model)",
                          path, file.profile.order.size(), n_layers);
  }
  return file.profile.order;
}

}  // namespace morphserve
