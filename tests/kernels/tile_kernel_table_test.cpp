// pick_tile_kernel: every run-time tile shape maps to the instantiation of that shape, and shapes
// past the table's bounds to its edge (the GEMM drivers clamp a tile to the kernel's register tile).
#include <gtest/gtest.h>

#include "kernels/tile_kernel_table.h"

namespace morphserve::matmul_detail {
namespace {

using ShapeOf = int (*)();

template <int R, int V>
struct ShapeTile {
  static int run() { return 10 * R + V; }
};

TEST(TileKernelTable, EveryShapeMapsToItsOwnInstantiation) {
  for (int r = 1; r <= 6; ++r)
    for (int v = 1; v <= 4; ++v) EXPECT_EQ((pick_tile_kernel<ShapeOf, ShapeTile, 6, 4>(r, v)()), 10 * r + v) << r << "x" << v;
}

TEST(TileKernelTable, OutOfRangeShapesClampToTheEdge) {
  EXPECT_EQ((pick_tile_kernel<ShapeOf, ShapeTile, 6, 2>(7, 3)()), 62);
  EXPECT_EQ((pick_tile_kernel<ShapeOf, ShapeTile, 6, 2>(0, 0)()), 11);
  EXPECT_EQ((pick_tile_kernel<ShapeOf, ShapeTile, 4, 3>(2, 9)()), 23);
  EXPECT_EQ((pick_tile_kernel<ShapeOf, ShapeTile, 1, 1>(3, 3)()), 11);
}

}  // namespace
}  // namespace morphserve::matmul_detail
