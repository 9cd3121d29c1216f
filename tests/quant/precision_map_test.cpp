#include "quant/precision_map.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace morphserve {
namespace {

TEST(PrecisionMap, EmptySpecKeepsEveryLayerAsStored) {
  const PrecisionMap map = parse_precision_map("", 5);
  ASSERT_EQ(map.size(), 5u);
  for (const auto& entry : map) EXPECT_FALSE(entry.has_value());
  EXPECT_EQ(format_precision_map(map), "");
}

TEST(PrecisionMap, AllAndRangesWithLaterItemsOverriding) {
  const PrecisionMap map = parse_precision_map("all:w8, 0-2:w4,4:f16", 6);
  EXPECT_EQ(map[0], DType::Q4_0);
  EXPECT_EQ(map[2], DType::Q4_0);
  EXPECT_EQ(map[3], DType::Q8_0);
  EXPECT_EQ(map[4], DType::F16);
  EXPECT_EQ(map[5], DType::Q8_0);
  EXPECT_EQ(format_precision_map(map), "0-2:q4_0,3:q8_0,4:f16,5:q8_0");
}

TEST(PrecisionMap, AcceptsLongFormatNames) {
  const PrecisionMap map = parse_precision_map("1:q8_0,2:Q4_0,3:bf16,0:f32", 4);
  EXPECT_EQ(map[0], DType::F32);
  EXPECT_EQ(map[1], DType::Q8_0);
  EXPECT_EQ(map[2], DType::Q4_0);
  EXPECT_EQ(map[3], DType::BF16);
}

TEST(PrecisionMap, RejectsBadItemsWithTheItemInTheMessage) {
  const char* bad[] = {"w4", "all:w3", "5:w4", "-1:w4", "3-1:w4", "a-b:w8", "0-9:w8", "1:", ":w4", "1.5:w4"};
  for (const char* spec : bad) {
    try {
      parse_precision_map(spec, 5);
      ADD_FAILURE() << "accepted '" << spec << "'";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("precision item"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace morphserve
