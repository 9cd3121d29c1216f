// Linear probing at load factor <= 1/2: a miss ends after about two or three slots.
#include "model/tokenizer_piece_map.h"

#include <cstring>
#include <limits>

#include "core/error.h"

namespace morphserve {

uint64_t PieceMap::hash(std::string_view s) {
  // Pieces are short, so eight bytes at a time with a multiply-xorshift mix beats a byte loop.
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  uint64_t h = s.size() * kMul;
  size_t pos = 0;
  for (; pos + 8 <= s.size(); pos += 8) {
    uint64_t chunk;
    std::memcpy(&chunk, s.data() + pos, 8);
    h = (h ^ chunk) * kMul;
    h ^= h >> 29;
  }
  if (pos < s.size()) {
    uint64_t chunk = 0;
    std::memcpy(&chunk, s.data() + pos, s.size() - pos);
    h = (h ^ chunk) * kMul;
    h ^= h >> 29;
  }
  h *= kMul;
  return h ^ (h >> 32);
}

void PieceMap::place(const Slot& slot, uint64_t h) {
  for (size_t i = h & mask_;; i = (i + 1) & mask_) {
    if (slots_[i].id < 0) {
      slots_[i] = slot;
      return;
    }
  }
}

void PieceMap::grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(old.empty() ? 64 : old.size() * 2, Slot{});
  mask_ = slots_.size() - 1;
  for (const Slot& slot : old) {
    if (slot.id >= 0) place(slot, hash(std::string_view(arena_).substr(slot.offset, slot.length)));
  }
}

void PieceMap::insert_or_assign(std::string_view piece, int32_t id) {
  if (piece.empty()) return;
  if (id < 0) fail<InvalidArgument>("piece ids must not be negative (got {})", id);
  if (arena_.size() + piece.size() > std::numeric_limits<uint32_t>::max()) {
    fail<InvalidArgument>("the vocabulary's pieces exceed 4 GiB in total");
  }
  if (const int32_t existing = find(piece); existing >= 0) {
    const uint64_t h = hash(piece);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      if (slots_[i].id == existing && std::string_view(arena_).substr(slots_[i].offset, slots_[i].length) == piece) {
        slots_[i].id = id;
        return;
      }
    }
  }
  if ((size_ + 1) * 2 > slots_.size()) grow();
  const uint64_t h = hash(piece);
  const Slot slot{static_cast<uint32_t>(h >> 32), static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(piece.size()), id};
  arena_.append(piece);
  place(slot, h);
  ++size_;
}

}  // namespace morphserve
