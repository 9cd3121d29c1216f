// GgufValue's checked accessors.
#include <functional>
#include <limits>

#include <gtest/gtest.h>

#include "core/error.h"
#include "model/gguf_file.h"

namespace morphserve {
namespace {

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ModelFileError& e) {
    return e.what();
  }
  return "(no ModelFileError)";
}

TEST(GgufValueTest, IntegersConvertWhenTheyFit) {
  EXPECT_EQ(GgufValue::u8(200).as_uint(), 200u);
  EXPECT_EQ(GgufValue::u8(200).as_int(), 200);
  EXPECT_EQ(GgufValue::i8(-3).as_int(), -3);
  EXPECT_EQ(GgufValue::i64(7).as_uint(), 7u);
  EXPECT_EQ(GgufValue::u64(5).as_int(), 5);
  EXPECT_EQ(GgufValue::u64(std::numeric_limits<uint64_t>::max()).as_uint(), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(GgufValue::i64(std::numeric_limits<int64_t>::min()).as_int(), std::numeric_limits<int64_t>::min());
  EXPECT_DOUBLE_EQ(GgufValue::i16(-4).as_float(), -4.0);
  EXPECT_DOUBLE_EQ(GgufValue::u32(9).as_float(), 9.0);
  EXPECT_DOUBLE_EQ(GgufValue::f32(0.25f).as_float(), 0.25);
  EXPECT_TRUE(GgufValue::u16(1).is_integer());
  EXPECT_FALSE(GgufValue::f64(1).is_integer());
  EXPECT_TRUE(GgufValue::f64(1).is_float());
  EXPECT_FALSE(GgufValue::boolean(true).is_integer());
}

TEST(GgufValueTest, RangeErrorsThrow) {
  EXPECT_EQ(message_of([] { GgufValue::i32(-1).as_uint(); }),
            "metadata value -1 is negative, expected an unsigned integer");
  EXPECT_EQ(message_of([] { GgufValue::u64(uint64_t{1} << 63).as_int(); }),
            "metadata value 9223372036854775808 does not fit in a signed 64-bit integer");
  EXPECT_THROW(GgufValue::i64(std::numeric_limits<int64_t>::min()).as_uint(), ModelFileError);
}

TEST(GgufValueTest, TypeMismatchesThrow) {
  EXPECT_EQ(message_of([] { GgufValue::string("x").as_uint(); }),
            "metadata value is a string, expected an unsigned integer");
  EXPECT_EQ(message_of([] { GgufValue::i32(1).as_string(); }), "metadata value is an int32, expected a string");
  EXPECT_EQ(message_of([] { GgufValue::u8(1).as_bool(); }), "metadata value is a uint8, expected a bool");
  EXPECT_EQ(message_of([] { GgufValue::boolean(true).as_int(); }), "metadata value is a bool, expected an integer");
  EXPECT_EQ(message_of([] { GgufValue::f32(1).as_array(); }), "metadata value is a float32, expected an array");
  EXPECT_EQ(message_of([] { GgufValue::array(GgufType::UINT8, {}).as_float(); }),
            "metadata value is an array, expected a number");
  EXPECT_THROW(GgufValue().as_uint(), ModelFileError);
  EXPECT_THROW(GgufValue::f64(1).as_int(), ModelFileError);
}

TEST(GgufValueTest, ArraysCheckTheirElementType) {
  EXPECT_THROW(GgufValue::array(GgufType::UINT32, {GgufValue::u32(1), GgufValue::i32(2)}), InvalidArgument);
  const GgufValue nested = GgufValue::array(GgufType::ARRAY, {GgufValue::array(GgufType::BOOL, {})});
  EXPECT_EQ(nested.type(), GgufType::ARRAY);
  EXPECT_EQ(nested.element_type(), GgufType::ARRAY);
  EXPECT_EQ(nested.as_array()[0].element_type(), GgufType::BOOL);
  EXPECT_FALSE(nested == GgufValue::array(GgufType::ARRAY, {GgufValue::array(GgufType::UINT8, {})}));
}

TEST(GgufValueTest, TypeNames) {
  EXPECT_EQ(gguf_type_name(GgufType::UINT8), "uint8");
  EXPECT_EQ(gguf_type_name(GgufType::FLOAT64), "float64");
  EXPECT_EQ(gguf_type_name(GgufType::ARRAY), "array");
  EXPECT_EQ(gguf_type_name(static_cast<GgufType>(13)), "unknown");
}

}  // namespace
}  // namespace morphserve
