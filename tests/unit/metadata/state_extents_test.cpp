#include <gtest/gtest.h>

#include "engine/region_map.h"

namespace hydrate {
namespace {

constexpr uint64_t k4K = 4096;

// 10 regions of 4 KiB, the last one 100 bytes: hydrated 2..4 and 9.
class StateExtents : public ::testing::Test {
 protected:
  StateExtents() : map(9 * k4K + 100, 4096) {
    map.set(2, 3);
    map.set(9, 1);
  }
  RegionMap map;
};

TEST_F(StateExtents, RunsOfHydratedAndUnhydratedRegionsClippedToTheDevice) {
  ExtentList out;
  map.state_extents(0, 1 << 20, 100, out);
  EXPECT_EQ(
      out,
      (ExtentList{{2 * k4K, 0}, {3 * k4K, kStateHydrated}, {4 * k4K, 0}, {100, kStateHydrated}}));
}

TEST_F(StateExtents, StartsAndEndsInsideRegions) {
  ExtentList out;
  map.state_extents(k4K + 10, 2 * k4K, 100, out);  // [4106, 12298): regions 1..3
  EXPECT_EQ(out, (ExtentList{{k4K - 10, 0}, {k4K + 10, kStateHydrated}}));
}

TEST_F(StateExtents, AtMostMaxExtentsAndAppendedToWhatIsThere) {
  ExtentList out = {{7, 0}};
  map.state_extents(0, 1 << 20, 2, out);
  EXPECT_EQ(out, (ExtentList{{7, 0}, {2 * k4K, 0}, {3 * k4K, kStateHydrated}}));
}

TEST_F(StateExtents, NothingAtOrPastTheEndOrForEmptyRequests) {
  ExtentList out;
  map.state_extents(map.device_size(), 10, 10, out);
  map.state_extents(map.device_size() + 5000, 10, 10, out);
  map.state_extents(0, 0, 10, out);
  map.state_extents(0, 10, 0, out);
  EXPECT_TRUE(out.empty());
}

TEST_F(StateExtents, TheLastShortRegionAlone) {
  ExtentList out;
  map.state_extents(9 * k4K + 50, 1000, 10, out);
  EXPECT_EQ(out, (ExtentList{{50, kStateHydrated}}));
}

TEST(StateExtentsLarge, OneExtentForAFullyHydratedLargeDevice) {
  RegionMap map(uint64_t{1} << 40, 64 * 1024);
  map.set(0, map.region_count());
  ExtentList out;
  map.state_extents(0, uint64_t{1} << 40, 10, out);
  EXPECT_EQ(out, (ExtentList{{uint64_t{1} << 40, kStateHydrated}}));
}

}  // namespace
}  // namespace hydrate
