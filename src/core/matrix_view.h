#pragma once
// A non-owning view of a weight matrix in any DType: `rows` rows of `cols` elements, rows stored
// contiguously (GGUF's [ne0 = cols, ne1 = rows] order).
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/dtype.h"

namespace morphserve {

struct MatrixView {
  DType type = DType::F32;
  const std::byte* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;

  size_t row_bytes() const { return dtype_row_bytes(type, cols); }
  size_t bytes() const { return row_bytes() * static_cast<size_t>(rows); }
  const std::byte* row(int64_t r) const { return data + row_bytes() * static_cast<size_t>(r); }
};

// The precision a group of matrices (a layer) runs at: the type most of them are in, ties going to
// the type holding more bytes. By count, not bytes: a quantized layer keeps any matrix whose width
// is not a multiple of 32 in float (as llama.cpp does), and that one matrix can outweigh the rest.
DType dominant_matrix_type(std::span<const MatrixView> matrices);

}  // namespace morphserve
