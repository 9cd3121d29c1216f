#pragma once
// Where the tests find ../shared/data, and a skip for when it is absent.
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace morphserve::testing {

// The shared data folder (MORPHSERVE_SHARED_DATA env var overrides the path fixed at configure time).
std::filesystem::path shared_data_dir();
// Path of a file under the shared data folder; empty when the folder or file is absent.
std::filesystem::path shared_data_file(const std::string& relative);
// Path of the morphserve executable built alongside the tests.
std::string morphserve_binary();

}  // namespace morphserve::testing

// Skips the current test with a clear message when a shared data file is missing.
#define MORPHSERVE_REQUIRE_DATA(var, relative)                                                   \
  const std::filesystem::path var = ::morphserve::testing::shared_data_file(relative);           \
  if (var.empty())                                                                              \
  GTEST_SKIP() << "shared test data " << (relative) << " not found under "                      \
               << ::morphserve::testing::shared_data_dir() << " (see ../shared/data/SOURCES.md)"
