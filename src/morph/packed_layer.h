#pragma once
// How a layer's seven matrices at one precision are laid out in a byte range: one after another,
// each starting 64-byte aligned (what the kernels want). A layer region holds its full-precision
// packing; a swapped-down layer's smaller packing sits at the region's start and the tail goes
// to the KV pool. Staging slots hold a quantized packing while it is in transit.
#include <array>
#include <cstddef>

#include "engine/layer_linears.h"

namespace morphserve {

struct PackedLayer {
  std::array<size_t, LayerLinears::kCount> offsets{};
  size_t bytes = 0;  // end of the last matrix, rounded up to 64

  // The packing of matrices with `like`'s types and shapes (its data pointers are not read).
  static PackedLayer of(const LayerLinears& like);
  // Views of `like`'s types and shapes over a packing at `base`.
  LayerLinears views_at(const std::byte* base, const LayerLinears& like) const;
  // Copies each matrix of `source` to its place under `base` (source has this packing's shapes):
  // host memory to host memory, the replica into the staging a Backend::copy_in fill is handed.
  void copy(const LayerLinears& source, std::byte* base) const;
};

}  // namespace morphserve
