#pragma once
// JSON from model files (safetensors headers, config.json, shard indexes), parsed so that a file
// cannot say two things and be read as one: nlohmann keeps the last of two equal keys, which would
// let a header name a tensor twice unnoticed, so a key repeated in one object is an error here.
// Nesting is bounded (the caller knows how deep its format goes), and memory and time stay linear
// in the text's length.
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace morphserve {

// Throws ModelFileError "<what> is not valid JSON (...)", "<what> has the key "k" twice ..." or
// "<what> nests arrays and objects more than N deep". `what` names the text, e.g. "config.json at
// /models/x" or "/models/x/model.safetensors is corrupt: its header".
nlohmann::json parse_strict_json(std::string_view text, std::string_view what, int max_depth);

// The whole of a model directory's text file (config.json, tokenizer.json, a shard index), for
// parse_strict_json. Throws ModelFileError "cannot open <path>" / "cannot read <path>".
std::string read_model_text_file(const std::filesystem::path& path);

}  // namespace morphserve
