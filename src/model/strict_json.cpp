// A SAX handler that builds the document itself rather than nlohmann's callback parser, which
// rescans the parent object at every nested object's end (quadratic in the number of tensors).
#include "model/strict_json.h"

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace morphserve {

namespace {

using nlohmann::json;

// The part of nlohmann's message that explains the fault, without its "[json.exception...] parse
// error at line 1, column 9: " prefix and without the "last read" excerpt, which quotes raw bytes
// of the file (possibly binary) into a sentence meant for a user.
std::string strict_json_reason(std::string_view what) {
  if (const size_t column = what.find("column "); column != std::string_view::npos) {
    if (const size_t colon = what.find(": ", column); colon != std::string_view::npos) what.remove_prefix(colon + 2);
  }
  std::string reason(what);
  if (const size_t last_read = reason.find("; last read: '"); last_read != std::string::npos) {
    const size_t expected = reason.rfind("; expected ");
    reason = reason.substr(0, last_read) + (expected > last_read && expected != std::string::npos
                                                ? reason.substr(expected) : std::string());
  }
  return reason;
}

class StrictJsonBuilder {
 public:
  StrictJsonBuilder(std::string_view what, int max_depth) : what_(what), max_depth_(max_depth) {}

  json take() { return std::move(root_); }

  bool null() { return add(json(nullptr)); }
  bool boolean(bool v) { return add(json(v)); }
  bool number_integer(json::number_integer_t v) { return add(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return add(json(v)); }
  bool number_float(json::number_float_t v, const std::string& /*text*/) { return add(json(v)); }
  bool string(json::string_t& v) { return add(json(std::move(v))); }
  bool binary(json::binary_t& v) { return add(json::binary(std::move(v))); }

  bool start_object(std::size_t /*elements*/) { return open(json::object()); }
  bool start_array(std::size_t /*elements*/) { return open(json::array()); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(json::string_t& k) {
    Frame& frame = stack_.back();
    if (frame.container->contains(k)) {
      std::string where = "at the top level";
      if (stack_.size() > 1) {
        where = "in";
        for (size_t i = 0; i + 1 < stack_.size(); ++i) {
          if (stack_[i].container->is_object()) where += fmt::format(" \"{}\"", stack_[i].key);
        }
      }
      fail<ModelFileError>("{} has the key \"{}\" twice {}", what_, k, where);
    }
    frame.key = std::move(k);
    return true;
  }

  bool parse_error(std::size_t position, const std::string& /*last_token*/, const json::exception& e) {
    fail<ModelFileError>("{} is not valid JSON ({} at byte {})", what_, strict_json_reason(e.what()), position);
  }

 private:
  struct Frame {
    json* container;
    std::string key;  // an object's pending key
  };

  // Places a value in the innermost open container (or makes it the document) and returns where
  // it lives. Parents are never appended to while a child is open, so the pointers stay valid.
  json* place(json value) {
    if (stack_.empty()) {
      root_ = std::move(value);
      return &root_;
    }
    Frame& frame = stack_.back();
    if (frame.container->is_array()) {
      frame.container->push_back(std::move(value));
      return &frame.container->back();
    }
    json& slot = (*frame.container)[frame.key];
    slot = std::move(value);
    return &slot;
  }

  bool add(json value) {
    place(std::move(value));
    return true;
  }

  bool open(json container) {
    if (static_cast<int>(stack_.size()) >= max_depth_) {
      fail<ModelFileError>("{} nests arrays and objects more than {} deep", what_, max_depth_);
    }
    json* where = place(std::move(container));
    stack_.push_back({where, {}});
    return true;
  }

  bool close() {
    stack_.pop_back();
    return true;
  }

  std::string_view what_;
  int max_depth_;
  json root_;
  std::vector<Frame> stack_;
};

}  // namespace

nlohmann::json parse_strict_json(std::string_view text, std::string_view what, int max_depth) {
  StrictJsonBuilder builder(what, max_depth);
  const bool ok = json::sax_parse(text.begin(), text.end(), &builder, json::input_format_t::json, true);
  if (!ok) fail<ModelFileError>("{} is not valid JSON", what);  // parse_error throws first; kept for safety
  return builder.take();
}

std::string read_model_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail<ModelFileError>("cannot open {}", path.string());
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) fail<ModelFileError>("cannot read {}", path.string());
  return text.str();
}

}  // namespace morphserve
