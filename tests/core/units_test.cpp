#include "core/units.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace morphserve {
namespace {

TEST(Units, ParsesSizesInBinaryAndDecimalUnits) {
  EXPECT_EQ(parse_size("1048576"), 1048576u);
  EXPECT_EQ(parse_size("512B"), 512u);
  EXPECT_EQ(parse_size("480MiB"), 480ull << 20);
  EXPECT_EQ(parse_size("3GiB"), 3ull << 30);
  EXPECT_EQ(parse_size("1.5GiB"), 3ull << 29);
  EXPECT_EQ(parse_size("2GB"), 2000000000u);
  EXPECT_EQ(parse_size(" 64 KiB "), 65536u);
}

TEST(Units, RejectsBadSizes) {
  for (const char* bad : {"", "GiB", "3XB", "-1GiB", "abc", "1e30GiB", "nan"}) {
    EXPECT_THROW(parse_size(bad), InvalidArgument) << bad;
  }
}

TEST(Units, ParsesDurations) {
  EXPECT_DOUBLE_EQ(parse_duration("2"), 2.0);
  EXPECT_DOUBLE_EQ(parse_duration("2s"), 2.0);
  EXPECT_DOUBLE_EQ(parse_duration("500ms"), 0.5);
  EXPECT_DOUBLE_EQ(parse_duration("1.5m"), 90.0);
  EXPECT_DOUBLE_EQ(parse_duration("1h"), 3600.0);
  for (const char* bad : {"", "s", "2 weeks", "-1s"}) EXPECT_THROW(parse_duration(bad), InvalidArgument) << bad;
}

TEST(Units, FormatsSizesForPeople) {
  EXPECT_EQ(format_size(512), "512 B");
  EXPECT_EQ(format_size(1536), "1.5 KiB");
  EXPECT_EQ(format_size(3ull << 30), "3.0 GiB");
}

}  // namespace
}  // namespace morphserve
