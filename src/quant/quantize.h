#pragma once
// Whole-matrix conversion between weight formats: building the W8/W4 replicas of a layer (and
// restoring float copies) from whatever type the model file holds.
#include "core/aligned_buffer.h"
#include "core/matrix_view.h"

namespace morphserve {

class ThreadPool;

// Converts `src` (any type) into `target` (F32/F16/BF16/Q8_0/Q4_0), rows in parallel when a pool
// is given. The result holds src.rows rows of dtype_row_bytes(target, src.cols) bytes. Same-type
// conversion copies. Q8_0/Q4_0 use llama.cpp's reference rounding (kernels/quantize_rows.h) and
// need cols % 32 == 0: otherwise InvalidArgument naming the shape (callers keep such tensors at a
// float type, as llama.cpp does).
AlignedBuffer convert_matrix(const MatrixView& src, DType target, ThreadPool* pool = nullptr);
// The same into `dst`, which holds src.rows * dtype_row_bytes(target, src.cols) bytes.
void convert_matrix_into(const MatrixView& src, DType target, std::byte* dst, ThreadPool* pool = nullptr);

}  // namespace morphserve
