// GgufValue: construction of arrays and the checked accessors.
#include <limits>

#include "core/error.h"
#include "model/gguf_file.h"

namespace morphserve {

std::string_view gguf_type_name(GgufType type) {
  switch (type) {
    case GgufType::UINT8: return "uint8";
    case GgufType::INT8: return "int8";
    case GgufType::UINT16: return "uint16";
    case GgufType::INT16: return "int16";
    case GgufType::UINT32: return "uint32";
    case GgufType::INT32: return "int32";
    case GgufType::FLOAT32: return "float32";
    case GgufType::BOOL: return "bool";
    case GgufType::STRING: return "string";
    case GgufType::ARRAY: return "array";
    case GgufType::UINT64: return "uint64";
    case GgufType::INT64: return "int64";
    case GgufType::FLOAT64: return "float64";
  }
  return "unknown";
}

namespace {

// "a string", "an int32", "a uint8" (the u of uint is a consonant sound).
std::string with_article(GgufType type) {
  const std::string_view name = gguf_type_name(type);
  const bool vowel = name.front() == 'a' || name.front() == 'e' || name.front() == 'i' || name.front() == 'o';
  return fmt::format("{} {}", vowel ? "an" : "a", name);
}

}  // namespace

GgufValue GgufValue::array(GgufType element_type, Array elements) {
  for (size_t i = 0; i < elements.size(); ++i) {
    if (elements[i].type() != element_type) {
      fail<InvalidArgument>("element {} of a GGUF {} array is {}", i, gguf_type_name(element_type),
                            with_article(elements[i].type()));
    }
  }
  GgufValue value(GgufType::ARRAY, std::move(elements));
  value.element_type_ = element_type;
  return value;
}

bool GgufValue::is_integer() const {
  switch (type_) {
    case GgufType::UINT8:
    case GgufType::INT8:
    case GgufType::UINT16:
    case GgufType::INT16:
    case GgufType::UINT32:
    case GgufType::INT32:
    case GgufType::UINT64:
    case GgufType::INT64:
      return !std::holds_alternative<std::monostate>(value_);
    default:
      return false;
  }
}

namespace {

[[noreturn]] void fail_mismatch(GgufType actual, bool empty, std::string_view expected) {
  if (empty) fail<ModelFileError>("metadata value is empty, expected {}", expected);
  fail<ModelFileError>("metadata value is {}, expected {}", with_article(actual), expected);
}

}  // namespace

uint64_t GgufValue::as_uint() const {
  if (const auto* u = std::get_if<uint64_t>(&value_)) return *u;
  if (const auto* i = std::get_if<int64_t>(&value_)) {
    if (*i < 0) fail<ModelFileError>("metadata value {} is negative, expected an unsigned integer", *i);
    return static_cast<uint64_t>(*i);
  }
  fail_mismatch(type_, std::holds_alternative<std::monostate>(value_), "an unsigned integer");
}

int64_t GgufValue::as_int() const {
  if (const auto* i = std::get_if<int64_t>(&value_)) return *i;
  if (const auto* u = std::get_if<uint64_t>(&value_)) {
    if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      fail<ModelFileError>("metadata value {} does not fit in a signed 64-bit integer", *u);
    }
    return static_cast<int64_t>(*u);
  }
  fail_mismatch(type_, std::holds_alternative<std::monostate>(value_), "an integer");
}

double GgufValue::as_float() const {
  if (const auto* d = std::get_if<double>(&value_)) return *d;
  if (const auto* i = std::get_if<int64_t>(&value_)) return static_cast<double>(*i);
  if (const auto* u = std::get_if<uint64_t>(&value_)) return static_cast<double>(*u);
  fail_mismatch(type_, std::holds_alternative<std::monostate>(value_), "a number");
}

bool GgufValue::as_bool() const {
  if (const auto* b = std::get_if<bool>(&value_)) return *b;
  fail_mismatch(type_, std::holds_alternative<std::monostate>(value_), "a bool");
}

const std::string& GgufValue::as_string() const {
  if (const auto* s = std::get_if<std::string>(&value_)) return *s;
  fail_mismatch(type_, std::holds_alternative<std::monostate>(value_), "a string");
}

const GgufValue::Array& GgufValue::as_array() const {
  if (const auto* a = std::get_if<Array>(&value_)) return *a;
  fail_mismatch(type_, std::holds_alternative<std::monostate>(value_), "an array");
}

}  // namespace morphserve
