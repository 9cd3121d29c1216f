#include "core/memory_budget.h"

#include <fmt/format.h>

#include "core/error.h"
#include "core/units.h"

namespace morphserve {

namespace {
std::string list_accounts(const std::map<std::string, size_t, std::less<>>& accounts) {
  std::string out;
  for (const auto& [name, bytes] : accounts) {
    if (bytes == 0) continue;
    if (!out.empty()) out += ", ";
    out += fmt::format("{} {}", name, format_size(bytes));
  }
  return out.empty() ? "nothing" : out;
}
}  // namespace

void MemoryBudget::reserve(std::string_view account, size_t bytes) {
  std::lock_guard lock(mutex_);
  if (bytes > budget_ - used_) {
    fail<OutOfBudget>("memory budget {} exceeded: {} more for {} while {} are held ({})", format_size(budget_),
                      format_size(bytes), account, format_size(used_), list_accounts(accounts_));
  }
  auto it = accounts_.find(account);
  if (it == accounts_.end()) it = accounts_.emplace(std::string(account), 0).first;
  it->second += bytes;
  used_ += bytes;
  peak_ = std::max(peak_, used_);
}

void MemoryBudget::set_budget(size_t budget_bytes) {
  std::lock_guard lock(mutex_);
  if (budget_bytes < used_) {
    fail<OutOfBudget>("memory budget {} is smaller than the {} already held ({})", format_size(budget_bytes),
                      format_size(used_), list_accounts(accounts_));
  }
  budget_ = budget_bytes;
}

size_t MemoryBudget::budget() const {
  std::lock_guard lock(mutex_);
  return budget_;
}

void MemoryBudget::release(std::string_view account, size_t bytes) {
  if (bytes == 0) return;
  std::lock_guard lock(mutex_);
  auto it = accounts_.find(account);
  if (it == accounts_.end() || it->second < bytes) {
    fail<InvalidArgument>("memory ledger: releasing {} bytes from '{}', which holds {}", bytes, account,
                          it == accounts_.end() ? 0 : it->second);
  }
  it->second -= bytes;
  used_ -= bytes;
}

void MemoryBudget::transfer(std::string_view from, std::string_view to, size_t bytes) {
  if (bytes == 0) return;
  std::lock_guard lock(mutex_);
  auto source = accounts_.find(from);
  if (source == accounts_.end() || source->second < bytes) {
    fail<InvalidArgument>("memory ledger: moving {} bytes from '{}', which holds {}", bytes, from,
                          source == accounts_.end() ? 0 : source->second);
  }
  source->second -= bytes;
  auto target = accounts_.find(to);
  if (target == accounts_.end()) target = accounts_.emplace(std::string(to), 0).first;
  target->second += bytes;
}

size_t MemoryBudget::used() const {
  std::lock_guard lock(mutex_);
  return used_;
}

size_t MemoryBudget::peak() const {
  std::lock_guard lock(mutex_);
  return peak_;
}

size_t MemoryBudget::held(std::string_view account) const {
  std::lock_guard lock(mutex_);
  const auto it = accounts_.find(account);
  return it == accounts_.end() ? 0 : it->second;
}

std::vector<std::pair<std::string, size_t>> MemoryBudget::accounts() const {
  std::lock_guard lock(mutex_);
  return {accounts_.begin(), accounts_.end()};
}

std::string MemoryBudget::describe() const {
  std::lock_guard lock(mutex_);
  return fmt::format("{} of {} held: {}", format_size(used_), format_size(budget_), list_accounts(accounts_));
}

}  // namespace morphserve
