#pragma once
// The seven linear matrices of one decoder layer as views: what the runner multiplies with. The
// runner keeps one per layer and the engine thread may repoint one between forward passes (a
// layer swap flips a layer to its W8/W4 replica and back), so a layer's precision is a property
// of these views, not of the model.
#include <array>
#include <cstddef>

#include "core/dtype.h"
#include "core/matrix_view.h"
#include "model/llama_weights.h"

namespace morphserve {

struct LayerLinears {
  static constexpr size_t kCount = 7;
  // In LayerWeights::linears() order: wq, wk, wv, wo, w_gate, w_up, w_down.
  std::array<MatrixView, kCount> m{};

  static LayerLinears of(const LayerWeights& layer);

  const MatrixView& wq() const { return m[0]; }
  const MatrixView& wk() const { return m[1]; }
  const MatrixView& wv() const { return m[2]; }
  const MatrixView& wo() const { return m[3]; }
  const MatrixView& w_gate() const { return m[4]; }
  const MatrixView& w_up() const { return m[5]; }
  const MatrixView& w_down() const { return m[6]; }

  size_t bytes() const;
  // The precision the layer runs at (see dominant_matrix_type in core/matrix_view.h).
  DType precision() const;
  // Same shapes, matrix by matrix (a replica must match the layer it replaces).
  bool same_shapes(const LayerLinears& other) const;
};

}  // namespace morphserve
