#include "morph/morph_status.h"

#include "core/dtype.h"

namespace morphserve {

FixedPrecisionStatus::FixedPrecisionStatus(std::string mode, const LlamaModel& model) {
  nlohmann::json layers = nlohmann::json::array();
  summary_.n_layers = static_cast<int>(model.weights.layers.size());
  // Under `off` the file's precision is the full one. The static modes quantized every layer at
  // load from a larger file type; the full-precision bytes are gone by then, and the layers of one
  // model have one shape, so the share is counted in layers.
  const bool quantized_at_load = mode != "off";
  int degraded = 0;
  for (size_t l = 0; l < model.weights.layers.size(); ++l) {
    const DType precision = model.weights.layers[l].dominant_type();
    if (precision == DType::Q8_0) ++summary_.layers_w8;
    if (precision == DType::Q4_0) ++summary_.layers_w4;
    if (quantized_at_load && (precision == DType::Q8_0 || precision == DType::Q4_0)) ++degraded;
    layers.push_back({{"layer", l}, {"precision", dtype_name(precision)}, {"phase", "fixed"}});
  }
  summary_.precision_degradation = summary_.n_layers > 0 ? static_cast<double>(degraded) / summary_.n_layers : 0.0;
  status_ = {{"mode", std::move(mode)},
             {"layers", std::move(layers)},
             {"precision_degradation", summary_.precision_degradation},
             {"swaps", {{"down", 0}, {"up", 0}, {"in_flight", 0}}}};
}

std::vector<double> swap_seconds_buckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0};
}

}  // namespace morphserve
