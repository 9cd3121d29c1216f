#include "engine/layer_linears.h"

namespace morphserve {

LayerLinears LayerLinears::of(const LayerWeights& layer) {
  LayerLinears views;
  const auto matrices = layer.linears();
  for (size_t i = 0; i < kCount; ++i) views.m[i] = matrices[i]->view();
  return views;
}

size_t LayerLinears::bytes() const {
  size_t total = 0;
  for (const MatrixView& v : m) total += v.bytes();
  return total;
}

DType LayerLinears::precision() const { return dominant_matrix_type(m); }

bool LayerLinears::same_shapes(const LayerLinears& other) const {
  for (size_t i = 0; i < kCount; ++i) {
    if (m[i].rows != other.m[i].rows || m[i].cols != other.m[i].cols) return false;
  }
  return true;
}

}  // namespace morphserve
