#include "core/matrix_view.h"

#include <map>
#include <utility>

namespace morphserve {

DType dominant_matrix_type(std::span<const MatrixView> matrices) {
  std::map<DType, std::pair<size_t, size_t>> count_and_bytes;
  for (const MatrixView& m : matrices) {
    auto& [count, bytes] = count_and_bytes[m.type];
    ++count;
    bytes += m.bytes();
  }
  DType best = matrices.empty() ? DType::F32 : matrices.front().type;
  std::pair<size_t, size_t> best_key{0, 0};
  for (const auto& [type, key] : count_and_bytes) {
    if (key > best_key) {
      best_key = key;
      best = type;
    }
  }
  return best;
}

}  // namespace morphserve
