#pragma once
// Maps a run-time tile shape to one of a register kernel's compile-time instantiations, for the
// GEMM drivers: a row block's last tile may have fewer rows, a call's last panel fewer vectors.
#include <algorithm>
#include <array>
#include <utility>

namespace morphserve::matmul_detail {

// Tile<r, v>::run for r clamped to [1, kMaxRows] and v to [1, kMaxVecs]. Tile is a class template
// because a level's kernel is a function template, which cannot itself be a template argument.
template <class Kernel, template <int, int> class Tile, int kMaxRows, int kMaxVecs>
Kernel pick_tile_kernel(int r, int v) {
  static constexpr auto table = []<int... I>(std::integer_sequence<int, I...>) {
    return std::array<Kernel, sizeof...(I)>{Tile<I / kMaxVecs + 1, I % kMaxVecs + 1>::run...};
  }(std::make_integer_sequence<int, kMaxRows * kMaxVecs>{});
  return table[(std::clamp(r, 1, kMaxRows) - 1) * kMaxVecs + std::clamp(v, 1, kMaxVecs) - 1];
}

}  // namespace morphserve::matmul_detail
