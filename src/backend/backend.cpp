#include "backend/backend.h"

namespace morphserve {

ResidentBuffer::ResidentBuffer(std::unique_ptr<Storage> storage, MemoryBudget& budget, std::string account)
    : storage_(std::move(storage)), budget_(&budget), account_(std::move(account)) {}

ResidentBuffer::ResidentBuffer(ResidentBuffer&& other) noexcept
    : storage_(std::move(other.storage_)), budget_(other.budget_), account_(std::move(other.account_)) {
  other.budget_ = nullptr;
}

ResidentBuffer& ResidentBuffer::operator=(ResidentBuffer&& other) noexcept {
  if (this != &other) {
    reset();
    storage_ = std::move(other.storage_);
    budget_ = other.budget_;
    account_ = std::move(other.account_);
    other.budget_ = nullptr;
  }
  return *this;
}

ResidentBuffer::~ResidentBuffer() { reset(); }

void ResidentBuffer::reset() noexcept {
  if (storage_ && budget_) {
    try {
      budget_->release(account_, storage_->size);
    } catch (const std::exception&) {
      // Only a corrupted ledger refuses; a destructor must not throw either way.
    }
  }
  storage_.reset();
  budget_ = nullptr;
}

}  // namespace morphserve
