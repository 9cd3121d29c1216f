#include "server/json_fields.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "server/api_error.h"

namespace morphserve::server {

namespace {
constexpr int kMaxDepth = 64;

// The deepest nesting of brackets outside strings. A linear pre-scan, because the parser's own
// depth callback costs nlohmann 3.11.2 a scan of the parent container at every closing brace
// (quadratic: a body of 40000 small messages took 2.7 s to refuse).
int nesting_depth(std::string_view text) {
  int depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;  // whatever follows a backslash is escaped
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;  // unbalanced text is the parser's to refuse
    }
  }
  return deepest;
}

template <typename T>
std::string range_text(T min, T max) {
  return fmt::format("between {} and {}", min, max);
}
}  // namespace

nlohmann::json parse_json_body(std::string_view body) {
  // Deep nesting is refused before parsing: a body of a million '[' must not cost a deep
  // recursion in the destructor.
  if (nesting_depth(body) > kMaxDepth) {
    throw_invalid(fmt::format("the JSON body is nested deeper than {} levels", kMaxDepth));
  }
  nlohmann::json value;
  try {
    value = nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& e) {
    // Not only parse errors: a number beyond double's range (1e400) is an out_of_range error.
    throw_invalid(fmt::format("the body is not valid JSON: {}", e.what()), std::nullopt, "invalid_json");
  }
  if (!value.is_object()) throw_invalid(fmt::format("the JSON body must be an object, got {}", json_kind(value)));
  return value;
}

std::string dump_json(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string_view json_kind(const nlohmann::json& value) {
  if (value.is_string()) return "string";
  if (value.is_boolean()) return "boolean";
  if (value.is_number_integer()) return "integer";
  if (value.is_number()) return "number";
  if (value.is_array()) return "array";
  if (value.is_object()) return "object";
  if (value.is_null()) return "null";
  return "binary";
}

const nlohmann::json* find_field(const nlohmann::json& object, std::string_view name) {
  const auto it = object.find(name);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<bool> get_bool(const nlohmann::json& object, std::string_view name, std::string_view path) {
  const nlohmann::json* v = find_field(object, name);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) {
    const std::string_view what = path.empty() ? name : path;
    throw_invalid(fmt::format("'{}' must be a boolean, got {}", what, json_kind(*v)), std::string(what));
  }
  return v->get<bool>();
}

std::optional<std::string> get_string(const nlohmann::json& object, std::string_view name, std::string_view path) {
  const nlohmann::json* v = find_field(object, name);
  if (!v) return std::nullopt;
  if (!v->is_string()) {
    const std::string_view what = path.empty() ? name : path;
    throw_invalid(fmt::format("'{}' must be a string, got {}", what, json_kind(*v)), std::string(what));
  }
  return v->get<std::string>();
}

int64_t as_int(const nlohmann::json& value, const std::string& what, int64_t min, int64_t max) {
  int64_t result = 0;
  if (value.is_number_integer()) {
    if (value.is_number_unsigned() && value.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
      throw_invalid(fmt::format("'{}' must be {}", what, range_text(min, max)), what);
    }
    result = value.get<int64_t>();
  } else if (value.is_number_float()) {
    const double d = value.get<double>();
    if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9.0e18) {
      throw_invalid(fmt::format("'{}' must be an integer, got {}", what, d), what);
    }
    result = static_cast<int64_t>(d);
  } else {
    throw_invalid(fmt::format("'{}' must be an integer, got {}", what, json_kind(value)), what);
  }
  if (result < min || result > max) {
    throw_invalid(fmt::format("'{}' must be {}, got {}", what, range_text(min, max), result), what);
  }
  return result;
}

std::optional<int64_t> get_int(const nlohmann::json& object, std::string_view name, int64_t min, int64_t max) {
  const nlohmann::json* v = find_field(object, name);
  if (!v) return std::nullopt;
  return as_int(*v, std::string(name), min, max);
}

std::optional<double> get_number(const nlohmann::json& object, std::string_view name, double min, double max) {
  const nlohmann::json* v = find_field(object, name);
  if (!v) return std::nullopt;
  if (!v->is_number()) {
    throw_invalid(fmt::format("'{}' must be a number, got {}", name, json_kind(*v)), std::string(name));
  }
  const double d = v->get<double>();
  if (!(d >= min && d <= max)) {
    throw_invalid(fmt::format("'{}' must be {}, got {}", name, range_text(min, max), d), std::string(name));
  }
  return d;
}

}  // namespace morphserve::server
