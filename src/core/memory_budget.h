#pragma once
// The ledger of --memory-budget (DESIGN.md §4): every resident allocation is reserved here under
// a named account before it is made, and an allocation past the budget fails loudly with the
// numbers instead of happening. Accounts can hand bytes to each other (a swapped-down layer's
// region lends its tail to the KV pool) without the total moving. Safe to read from any thread.
#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace morphserve {

class MemoryBudget {
 public:
  explicit MemoryBudget(size_t budget_bytes) : budget_(budget_bytes) {}

  // Throws OutOfBudget naming the account, the request, and what the other accounts hold.
  void reserve(std::string_view account, size_t bytes);
  // Throws InvalidArgument when the account holds fewer bytes (a bookkeeping bug).
  void release(std::string_view account, size_t bytes);
  // Moves bytes between accounts; the total is unchanged. Throws like release.
  void transfer(std::string_view from, std::string_view to, size_t bytes);

  // Sets the limit once the size it should have is known (serve's automatic budget: the weights
  // are loaded against an unlimited one, then the KV share is added). Throws OutOfBudget when
  // more than `budget_bytes` is held already.
  void set_budget(size_t budget_bytes);

  size_t budget() const;
  size_t used() const;
  size_t peak() const;
  size_t held(std::string_view account) const;
  std::vector<std::pair<std::string, size_t>> accounts() const;
  std::string describe() const;  // "weights 1.2 MiB, kv 3 MiB, ... of 8 MiB"

 private:
  size_t budget_;
  mutable std::mutex mutex_;
  std::map<std::string, size_t, std::less<>> accounts_;
  size_t used_ = 0;
  size_t peak_ = 0;
};

}  // namespace morphserve
