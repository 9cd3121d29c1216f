#pragma once
// The importance order on disk: the JSON file `morphserve profile` writes and
// `serve --morph-order` reads (DESIGN.md §5). Everything a reader needs is the "order" array; the
// per-layer scores ride along so a person can see why the order is what it is.
//
//   {"model": "stories260K.gguf", "n_layers": 5, "order": [4, 3, 0, 2, 1],
//    "layers": [{"layer": 0, "lts": .., "lrs": .., "mds": .., "lis": .., "rank": 2}, ...],
//    "mds_steps": [[..], ...],            // MDS of every candidate at every greedy step (null: in Q)
//    "calibration": {"file": "val.txt", "tokens": 1024, "ctx": 128, "skip_tokens": 0}}
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "morph/importance.h"

namespace morphserve {

// Where the scores came from, recorded beside them.
struct CalibrationInfo {
  std::string model;  // the -m the profile ran on
  std::string file;   // the calibration text
  int64_t skip_tokens = 0;
};

struct MorphOrderFile {
  CalibrationInfo info;
  ImportanceProfile profile;
};

// Why `order` is not a permutation of 0..n_layers-1, as a clause ("names layer 2 twice; ..."), or
// "" when it is: anything else would leave a layer never swapped, or swap one twice.
std::string order_problem(const std::vector<int64_t>& order, int64_t n_layers);

// Layers 0..n-1 in turn: the order used when no profile is given.
std::vector<int> front_to_back_order(int n_layers);

std::string morph_order_json(const ImportanceProfile& profile, const CalibrationInfo& info);
// Writes the JSON atomically (a temporary file renamed into place). Throws InvalidArgument when
// the file cannot be written.
void write_morph_order(const std::string& path, const ImportanceProfile& profile, const CalibrationInfo& info);

// Parses a whole order file. `origin` names it in errors. Throws InvalidArgument naming the origin
// and the problem: not JSON, a missing or mistyped field, an order that is not a permutation.
MorphOrderFile parse_morph_order(std::string_view text, const std::string& origin);

// The order in the file at `path`, checked to be a permutation of 0..n_layers-1 for the model
// about to be served. Throws InvalidArgument naming the file and the problem.
std::vector<int> load_morph_order(const std::string& path, int n_layers);

}  // namespace morphserve
