#pragma once
// Weight matrices the matmul tests share: seeded uniform values in [-1, 1) converted to a format,
// and the instruction-set levels this CPU can run.
#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/matrix_view.h"
#include "kernels/convert.h"
#include "kernels/cpu_features.h"

namespace morphserve::testing {

struct RandomMatrix {
  AlignedBuffer data;
  MatrixView view;
};

// rows × cols of `type`; a matrix with no rows still gets a (one-byte) buffer, so its view has data.
inline RandomMatrix random_matrix(DType type, int64_t rows, int64_t cols, uint32_t seed) {
  const size_t row_bytes = dtype_row_bytes(type, cols);
  RandomMatrix m{AlignedBuffer(std::max<size_t>(1, row_bytes * static_cast<size_t>(rows))), {}};
  m.view = {type, m.data.data(), rows, cols};
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (auto& v : row) v = dist(rng);
    convert_row_from_f32(type, row.data(), m.data.data() + row_bytes * static_cast<size_t>(r), cols);
  }
  return m;
}

inline std::vector<Isa> supported_levels() {
  std::vector<Isa> levels;
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
    if (cpu_supports(isa)) levels.push_back(isa);
  }
  return levels;
}

}  // namespace morphserve::testing
