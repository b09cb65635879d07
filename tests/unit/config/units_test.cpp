#include "config/units.h"

#include <gtest/gtest.h>

namespace hydrate::config {
namespace {

using std::chrono::milliseconds;

TEST(ParseSize, AcceptsBinaryUnitsAndPlainIntegers) {
  EXPECT_EQ(parse_size("0"), 0u);
  EXPECT_EQ(parse_size("65536"), 65536u);
  EXPECT_EQ(parse_size("512B"), 512u);
  EXPECT_EQ(parse_size("64KiB"), 65536u);
  EXPECT_EQ(parse_size("64 KiB"), 65536u);
  EXPECT_EQ(parse_size(" 4MiB "), 4u << 20);
  EXPECT_EQ(parse_size("1GiB"), 1u << 30);
  EXPECT_EQ(parse_size("2TiB"), uint64_t{2} << 40);
}

TEST(ParseSize, RefusesAmbiguousOrMalformedText) {
  for (const char* bad : {"", "KiB", "64KB", "64K", "64kib", "1.5GiB", "-1", "+4", "64 KiB x",
                          "0x10", "64MiB/s", "18446744073709551616"})
    EXPECT_FALSE(parse_size(bad).has_value()) << bad;
  EXPECT_FALSE(parse_size("16777216TiB").has_value());  // 2^64 bytes: overflow
}

TEST(ParseRate, AcceptsPerSecondSuffix) {
  EXPECT_EQ(parse_rate("0"), 0u);
  EXPECT_EQ(parse_rate("100MiB/s"), 100u << 20);
  EXPECT_EQ(parse_rate("100MiB"), 100u << 20);
  EXPECT_FALSE(parse_rate("100MiB/h").has_value());
  EXPECT_FALSE(parse_rate("/s").has_value());
}

TEST(ParseDuration, NeedsAUnitExceptForZero) {
  EXPECT_EQ(parse_duration("250ms"), milliseconds(250));
  EXPECT_EQ(parse_duration("1s"), milliseconds(1000));
  EXPECT_EQ(parse_duration("5m"), milliseconds(300'000));
  EXPECT_EQ(parse_duration("2h"), milliseconds(7'200'000));
  EXPECT_EQ(parse_duration("0"), milliseconds(0));
  for (const char* bad : {"", "1", "60", "1d", "1.5s", "s", "-1s", "1 sec"})
    EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
}

TEST(FormatUnits, RoundTrip) {
  EXPECT_EQ(format_size(65536), "64KiB");
  EXPECT_EQ(format_size(1000), "1000B");
  EXPECT_EQ(format_size(0), "0B");
  EXPECT_EQ(format_size(uint64_t{3} << 40), "3TiB");
  EXPECT_EQ(format_duration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(format_duration(milliseconds(60'000)), "1m");
  EXPECT_EQ(format_duration(milliseconds(7'200'000)), "2h");
  for (uint64_t v : {uint64_t{1}, uint64_t{4096}, uint64_t{123456789}, uint64_t{1} << 35})
    EXPECT_EQ(parse_size(format_size(v)), v);
}

}  // namespace
}  // namespace hydrate::config
