#pragma once
// Reading a client's JSON body field by field. Every reader returns nullopt when the field is
// absent or null and throws a 400 ApiError naming the field when it has the wrong type or is out
// of range, so a handler never sees a value it has not checked.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace morphserve::server {

// Parses a request body; malformed JSON, nesting deeper than 64 levels, or a top level that is
// not an object is a 400.
nlohmann::json parse_json_body(std::string_view body);

// Serialises for the wire. Invalid UTF-8 (a token that ends mid-character) becomes U+FFFD rather
// than an exception.
std::string dump_json(const nlohmann::json& value);

// "string", "integer", "number", "boolean", "array", "object", "null": for error messages.
std::string_view json_kind(const nlohmann::json& value);

const nlohmann::json* find_field(const nlohmann::json& object, std::string_view name);

// `path` names a nested field in the error ("stream_options.include_usage"); empty: `name`.
std::optional<bool> get_bool(const nlohmann::json& object, std::string_view name, std::string_view path = {});
std::optional<std::string> get_string(const nlohmann::json& object, std::string_view name, std::string_view path = {});
// Integers; a float with an integral value (16.0) is accepted, as OpenAI's server does.
std::optional<int64_t> get_int(const nlohmann::json& object, std::string_view name, int64_t min, int64_t max);
std::optional<double> get_number(const nlohmann::json& object, std::string_view name, double min, double max);

// Checks an integer-valued JSON value (an array element); `what` names it in the error.
int64_t as_int(const nlohmann::json& value, const std::string& what, int64_t min, int64_t max);

}  // namespace morphserve::server
