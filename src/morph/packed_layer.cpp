#include "morph/packed_layer.h"

#include <cstring>

#include "backend/backend.h"

namespace morphserve {

namespace {
size_t round_up(size_t n) { return (n + Backend::kAlignment - 1) / Backend::kAlignment * Backend::kAlignment; }
}  // namespace

PackedLayer PackedLayer::of(const LayerLinears& like) {
  PackedLayer packed;
  size_t offset = 0;
  for (size_t i = 0; i < LayerLinears::kCount; ++i) {
    packed.offsets[i] = offset;
    offset = round_up(offset + like.m[i].bytes());
  }
  packed.bytes = offset;
  return packed;
}

LayerLinears PackedLayer::views_at(const std::byte* base, const LayerLinears& like) const {
  LayerLinears views = like;
  for (size_t i = 0; i < LayerLinears::kCount; ++i) views.m[i].data = base + offsets[i];
  return views;
}

void PackedLayer::copy(const LayerLinears& source, std::byte* base) const {
  for (size_t i = 0; i < LayerLinears::kCount; ++i) {
    std::memcpy(base + offsets[i], source.m[i].data, source.m[i].bytes());
  }
}

}  // namespace morphserve
