// PrefetchOrder and merge_profiles: recorded order, contiguous batches, skipping what is
// already hydrated, and the interleaved union of several profiles.
#include "engine/profile/prefetch_order.h"

#include <gtest/gtest.h>

namespace hydrate {
namespace {

constexpr uint32_t kRegion = 64u << 10;

std::vector<ProfileRun> drain(PrefetchOrder& order, const RegionMap& map, uint64_t batch) {
  std::vector<ProfileRun> out;
  while (auto run = order.next(map, batch)) out.push_back(*run);
  return out;
}

TEST(PrefetchOrder, YieldsRunsInRecordedOrder) {
  RegionMap map(100ull * kRegion, kRegion);
  PrefetchOrder order({{90, 3}, {5, 1}, {40, 2}});
  EXPECT_EQ(drain(order, map, 64), (std::vector<ProfileRun>{{90, 3}, {5, 1}, {40, 2}}));
}

TEST(PrefetchOrder, CoalescesRunsAdjacentOnTheDeviceIntoBatches) {
  RegionMap map(100ull * kRegion, kRegion);
  PrefetchOrder order({{10, 2}, {12, 3}, {15, 1}, {50, 1}});
  EXPECT_EQ(drain(order, map, 64), (std::vector<ProfileRun>{{10, 6}, {50, 1}}));
}

TEST(PrefetchOrder, BatchesAreBoundedBySize) {
  RegionMap map(100ull * kRegion, kRegion);
  PrefetchOrder order({{0, 10}});
  EXPECT_EQ(drain(order, map, 4), (std::vector<ProfileRun>{{0, 4}, {4, 4}, {8, 2}}));
}

TEST(PrefetchOrder, SkipsHydratedRegions) {
  RegionMap map(100ull * kRegion, kRegion);
  map.set(3, 2);  // 3, 4
  map.set(20, 1);
  PrefetchOrder order({{0, 8}, {20, 1}, {30, 1}});
  EXPECT_EQ(drain(order, map, 64), (std::vector<ProfileRun>{{0, 3}, {5, 3}, {30, 1}}));
  EXPECT_EQ(order.regions(), 10u);
}

TEST(PrefetchOrder, RemainingCountsUnhydratedProfileRegions) {
  RegionMap map(100ull * kRegion, kRegion);
  PrefetchOrder order({{0, 8}, {50, 2}});
  EXPECT_EQ(order.remaining(map), 10u);
  map.set(0, 4);
  map.set(51, 1);
  EXPECT_EQ(order.remaining(map), 5u);
}

AccessProfile profile(std::vector<ProfileRun> runs, uint64_t size = 100ull * kRegion,
                      uint32_t region = kRegion) {
  AccessProfile p;
  p.source_size = size;
  p.region_size = region;
  p.source_identity = "id";
  p.runs = std::move(runs);
  return p;
}

TEST(MergeProfiles, InterleavesByRecordedPositionKeepingFirstAppearance) {
  AccessProfile out;
  ASSERT_EQ(
      merge_profiles({profile({{1, 1}, {2, 1}, {3, 1}}), profile({{9, 1}, {2, 1}, {8, 1}})}, out),
      "");
  // Position 0 of each (1, 9), then position 1 (2; the second 2 is a repeat), then 3, 8.
  EXPECT_EQ(out.runs, (std::vector<ProfileRun>{{1, 1}, {9, 1}, {2, 2}, {8, 1}}));
  EXPECT_EQ(out.regions(), 5u);
}

TEST(MergeProfiles, RefusesInputsOfAnotherGeometry) {
  AccessProfile out;
  std::string why = merge_profiles({profile({}), profile({}, 50ull * kRegion)}, out);
  EXPECT_NE(why.find("input 1"), std::string::npos) << why;
  why = merge_profiles({profile({}), profile({}, 100ull * kRegion, 4096)}, out);
  EXPECT_NE(why.find("region size"), std::string::npos) << why;
}

}  // namespace
}  // namespace hydrate
