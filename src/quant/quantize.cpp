#include "quant/quantize.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "kernels/convert.h"
#include "kernels/thread_pool.h"

namespace morphserve {

namespace {

// Rows of the result; throws InvalidArgument for a conversion that cannot be done.
size_t checked_result_bytes(const MatrixView& src, DType target) {
  if (!is_known_dtype(static_cast<uint32_t>(target)) || !is_known_dtype(static_cast<uint32_t>(src.type))) {
    fail<InvalidArgument>("convert_matrix: unsupported type (from {} to {})", static_cast<uint32_t>(src.type),
                          static_cast<uint32_t>(target));
  }
  if (src.rows < 0 || src.cols < 0) fail<InvalidArgument>("convert_matrix: invalid shape {}x{}", src.rows, src.cols);
  if (src.cols % dtype_block_elements(target) != 0) {
    fail<InvalidArgument>("cannot convert a {}x{} matrix to {}: {} needs cols divisible by {} (keep it at a float type)",
                          src.rows, src.cols, dtype_name(target), dtype_name(target), dtype_block_elements(target));
  }
  return dtype_row_bytes(target, src.cols) * static_cast<size_t>(src.rows);
}

void convert_checked(const MatrixView& src, DType target, std::byte* dst, ThreadPool* pool) {
  if (src.rows == 0 || src.cols == 0) return;
  if (!src.data) fail<InvalidArgument>("convert_matrix: null source data for a {}x{} matrix", src.rows, src.cols);
  const size_t src_row = src.row_bytes();
  const size_t dst_row = dtype_row_bytes(target, src.cols);
  auto convert_rows = [&](int64_t begin, int64_t end) {
    if (src.type == target) {
      std::memcpy(dst + dst_row * begin, src.data + src_row * begin, dst_row * static_cast<size_t>(end - begin));
      return;
    }
    std::vector<float> row(static_cast<size_t>(src.cols));
    for (int64_t r = begin; r < end; ++r) {
      dequantize_row(src.type, src.row(r), row.data(), src.cols);
      convert_row_from_f32(target, row.data(), dst + dst_row * r, src.cols);
    }
  };
  if (pool) {
    // About 64K elements per chunk: enough work to amortise a dispatch, small enough to balance.
    const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(src.cols, 1));
    pool->parallel_for(src.rows, grain, convert_rows);
  } else {
    convert_rows(0, src.rows);
  }
}

}  // namespace

AlignedBuffer convert_matrix(const MatrixView& src, DType target, ThreadPool* pool) {
  AlignedBuffer out(checked_result_bytes(src, target));
  convert_checked(src, target, out.data(), pool);
  return out;
}

void convert_matrix_into(const MatrixView& src, DType target, std::byte* dst, ThreadPool* pool) {
  checked_result_bytes(src, target);
  convert_checked(src, target, dst, pool);
}

}  // namespace morphserve
