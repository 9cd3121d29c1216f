#pragma once
// Piece text -> token id. The merge loop looks up every candidate pair, most of which are not
// pieces, so lookups must be cheap on a miss: open addressing over one flat array, a 32-bit tag
// per slot to skip almost every string compare, and keys stored in one arena.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace morphserve {

class PieceMap {
 public:
  // Adds a piece or, if it is already there, gives it this id (a later duplicate wins, as in
  // llama.cpp's token_to_id). Empty pieces are ignored: nothing can match them.
  void insert_or_assign(std::string_view piece, int32_t id);
  // The piece's id, or -1.
  int32_t find(std::string_view piece) const {
    if (slots_.empty()) return -1;
    const uint64_t h = hash(piece);
    const auto tag = static_cast<uint32_t>(h >> 32);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.id < 0) return -1;
      if (slot.tag == tag && slot.length == piece.size() && arena_.compare(slot.offset, slot.length, piece) == 0) return slot.id;
    }
  }
  size_t size() const { return size_; }

 private:
  struct Slot {
    uint32_t tag = 0;
    uint32_t offset = 0;
    uint32_t length = 0;
    int32_t id = -1;  // -1: empty
  };

  static uint64_t hash(std::string_view s);
  void grow();
  void place(const Slot& slot, uint64_t h);

  std::string arena_;
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace morphserve
