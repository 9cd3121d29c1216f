// The ledger of --memory-budget: reservations past the limit are refused with the numbers and
// change nothing, accounts hand bytes to each other without the total moving, and a limit set
// later (serve's automatic budget) is never below what is held.
#include "core/memory_budget.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "core/error.h"

namespace morphserve {
namespace {

TEST(MemoryBudget, ARefusedReservationNamesTheAccountAndReservesNothing) {
  MemoryBudget budget(1000);
  budget.reserve("weights", 600);
  try {
    budget.reserve("kv base", 401);
    FAIL() << "a reservation past the budget was accepted";
  } catch (const OutOfBudget& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("kv base"), std::string::npos) << message;
    EXPECT_NE(message.find("weights"), std::string::npos) << message;
  }
  EXPECT_EQ(budget.used(), 600u);
  EXPECT_EQ(budget.held("kv base"), 0u);
  budget.reserve("kv base", 400);
  EXPECT_EQ(budget.used(), 1000u);
  EXPECT_EQ(budget.peak(), 1000u);
}

TEST(MemoryBudget, TransfersKeepTheTotalAndReleasesCannotGoBelowZero) {
  MemoryBudget budget(1000);
  budget.reserve("layer weights", 500);
  budget.transfer("layer weights", "kv lent", 200);
  EXPECT_EQ(budget.held("layer weights"), 300u);
  EXPECT_EQ(budget.held("kv lent"), 200u);
  EXPECT_EQ(budget.used(), 500u);
  EXPECT_THROW(budget.transfer("kv lent", "layer weights", 201), InvalidArgument);
  EXPECT_THROW(budget.release("kv lent", 201), InvalidArgument);
  budget.release("kv lent", 200);
  budget.release("layer weights", 300);
  EXPECT_EQ(budget.used(), 0u);
  EXPECT_EQ(budget.peak(), 500u);
}

TEST(MemoryBudget, ALimitSetLaterIsNeverBelowWhatIsHeld) {
  MemoryBudget budget(std::numeric_limits<size_t>::max());
  budget.reserve("weights", 1000);
  EXPECT_THROW(budget.set_budget(999), OutOfBudget);
  EXPECT_EQ(budget.budget(), std::numeric_limits<size_t>::max()) << "a refused limit changes nothing";
  budget.set_budget(1500);
  EXPECT_EQ(budget.budget(), 1500u);
  EXPECT_THROW(budget.reserve("kv base", 501), OutOfBudget);
  budget.reserve("kv base", 500);
  EXPECT_EQ(budget.used(), 1500u);
}

}  // namespace
}  // namespace morphserve
