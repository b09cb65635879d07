// Request routing of DESIGN.md §4, one behaviour per test.
#include "tests/unit/clone/clone_fixture.h"

namespace hydrate::test {
namespace {

using Routing = CloneFixture;

TEST_F(Routing, ReadOfUnhydratedRegionReturnsSourceDataAndCopiesTheFetchWindow) {
  open_ok();
  auto got = read(200'000, 4096);
  EXPECT_EQ(got, source_bytes(200'000, 4096));
  // One source round trip, for the aligned 128 KiB window around the read.
  ASSERT_EQ(source.reads(), 1u);
  EXPECT_EQ(source.read_log()[0].offset, 131072u);
  EXPECT_EQ(source.read_log()[0].length, 131072u);
  settle();
  // Copy-on-read: both regions of the window are on the destination and hydrated.
  EXPECT_EQ(dest_bytes(131072, 131072), source_bytes(131072, 131072));
  EXPECT_TRUE(volume->region_map().test(2));
  EXPECT_TRUE(volume->region_map().test(3));
  EXPECT_FALSE(volume->region_map().test(4));
  // Served from the destination from now on.
  EXPECT_EQ(read(140'000, 10'000), source_bytes(140'000, 10'000));
  EXPECT_EQ(source.reads(), 1u);
}

TEST_F(Routing, ReadWithoutCopyOnReadLeavesDestinationAlone) {
  settings.copy_on_read = false;
  open_ok();
  EXPECT_EQ(read(200'000, 4096), source_bytes(200'000, 4096));
  settle();
  EXPECT_EQ(source.read_log()[0].length, 4096u);  // exactly the request, no window
  EXPECT_EQ(destination.writes(), 0u);
  EXPECT_EQ(volume->region_map().hydrated_regions(), 0u);
}

TEST_F(Routing, ReadSpanningHydratedAndUnhydratedRegionsIsStitchedCorrectly) {
  open_ok();
  std::vector<std::byte> mine(kRegion, std::byte{0x5a});
  ASSERT_TRUE(write(3 * kRegion, mine).ok());  // region 3 hydrated by a write
  auto got = read(2 * kRegion + 100, 3 * kRegion);
  auto expect = source_bytes(2 * kRegion + 100, 3 * kRegion);
  std::fill(expect.begin() + (kRegion - 100), expect.begin() + (2 * kRegion - 100),
            std::byte{0x5a});
  EXPECT_EQ(got, expect);
}

TEST_F(Routing, WholeRegionWriteNeedsNoSourceFetch) {
  open_ok();
  std::vector<std::byte> data = random_bytes(2 * kRegion, 7);
  ASSERT_TRUE(write(4 * kRegion, data).ok());
  EXPECT_EQ(source.reads(), 0u);
  EXPECT_TRUE(volume->region_map().test(4));
  EXPECT_TRUE(volume->region_map().test(5));
  EXPECT_EQ(read(4 * kRegion, 2 * kRegion), data);
}

TEST_F(Routing, PartialRegionWriteFetchesOnceAndMergesInMemory) {
  open_ok();
  std::vector<std::byte> data(1000, std::byte{0xee});
  ASSERT_TRUE(write(5 * kRegion + 300, data).ok());
  ASSERT_EQ(source.reads(), 1u);
  EXPECT_EQ(source.read_log()[0].offset, 5 * kRegion);
  EXPECT_EQ(source.read_log()[0].length, kRegion);
  auto expect = source_bytes(5 * kRegion, kRegion);
  std::fill(expect.begin() + 300, expect.begin() + 1300, std::byte{0xee});
  // One destination write carrying the whole merged region.
  auto log = destination.log();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].offset, 5 * kRegion);
  EXPECT_EQ(log[0].length, kRegion);
  EXPECT_EQ(dest_bytes(5 * kRegion, kRegion), expect);
  EXPECT_EQ(read(5 * kRegion, kRegion), expect);
}

TEST_F(Routing, UnalignedWriteAcrossRegionsFetchesOnlyTheEdges) {
  open_ok();
  std::vector<std::byte> data = random_bytes(3 * kRegion, 9);
  uint64_t at = 8 * kRegion + 512;
  ASSERT_TRUE(write(at, data).ok());
  EXPECT_EQ(source.reads(), 2u);  // head and tail regions only
  auto expect = source_bytes(8 * kRegion, 4 * kRegion);
  std::copy(data.begin(), data.end(), expect.begin() + 512);
  EXPECT_EQ(read(8 * kRegion, 4 * kRegion), expect);
  for (uint64_t r = 8; r < 12; ++r) EXPECT_TRUE(volume->region_map().test(r)) << r;
}

TEST_F(Routing, WriteZeroesOverWholeUnhydratedRegionsHydratesWithoutFetch) {
  open_ok();
  ASSERT_TRUE(run_coroutine(io, volume->zero(10 * kRegion, 2 * kRegion, ZeroFlags{})).ok());
  EXPECT_EQ(source.reads(), 0u);
  EXPECT_TRUE(volume->region_map().test(10));
  EXPECT_TRUE(volume->region_map().test(11));
  EXPECT_EQ(read(10 * kRegion, 2 * kRegion), std::vector<std::byte>(2 * kRegion));
}

TEST_F(Routing, PartialWriteZeroesKeepsTheRestOfTheRegion) {
  open_ok();
  ASSERT_TRUE(run_coroutine(io, volume->zero(12 * kRegion + 4096, 4096, ZeroFlags{})).ok());
  auto expect = source_bytes(12 * kRegion, kRegion);
  std::fill(expect.begin() + 4096, expect.begin() + 8192, std::byte{0});
  EXPECT_EQ(read(12 * kRegion, kRegion), expect);
}

TEST_F(Routing, FastZeroOfPartialUnhydratedRegionFailsWithEnotsupAndChangesNothing) {
  open_ok();
  ZeroFlags flags;
  flags.fast_only = true;
  IoResult r = run_coroutine(io, volume->zero(13 * kRegion + 4096, 4096, flags));
  EXPECT_EQ(r.error, ENOTSUP);
  EXPECT_EQ(source.reads(), 0u);
  EXPECT_EQ(destination.writes(), 0u);
  EXPECT_FALSE(volume->region_map().test(13));
  // Whole regions are fast.
  EXPECT_TRUE(run_coroutine(io, volume->zero(13 * kRegion, kRegion, flags)).ok());
}

TEST_F(Routing, TrimHydratesWholeRegionsAsZeroAndIgnoresPartialEdges) {
  open_ok();
  ASSERT_TRUE(
      run_coroutine(io, volume->trim(14 * kRegion + 100, 3 * kRegion, WriteFlags{})).ok());
  EXPECT_EQ(source.reads(), 0u);
  EXPECT_FALSE(volume->region_map().test(14));  // partial head: untouched
  EXPECT_TRUE(volume->region_map().test(15));
  EXPECT_TRUE(volume->region_map().test(16));
  EXPECT_FALSE(volume->region_map().test(17));  // partial tail: untouched
  EXPECT_EQ(read(15 * kRegion, 2 * kRegion), std::vector<std::byte>(2 * kRegion));
  EXPECT_EQ(read(14 * kRegion, 1000), source_bytes(14 * kRegion, 1000));
}

TEST_F(Routing, CacheHydratesTheRangeBeforeReplying) {
  open_ok();
  ASSERT_TRUE(run_coroutine(io, volume->cache(20 * kRegion + 10, 3 * kRegion)).ok());
  for (uint64_t r = 20; r < 24; ++r) EXPECT_TRUE(volume->region_map().test(r)) << r;
  EXPECT_EQ(dest_bytes(20 * kRegion, 4 * kRegion), source_bytes(20 * kRegion, 4 * kRegion));
  uint64_t reads = source.reads();
  EXPECT_EQ(read(20 * kRegion, 4 * kRegion), source_bytes(20 * kRegion, 4 * kRegion));
  EXPECT_EQ(source.reads(), reads);
}

TEST_F(Routing, ReadOnlyCloneRefusesWritesWithEperm) {
  settings.read_only = true;
  open_ok();
  EXPECT_TRUE(volume->info().read_only);
  EXPECT_EQ(write(0, std::vector<std::byte>(512)).error, EPERM);
  EXPECT_EQ(run_coroutine(io, volume->trim(0, kRegion, WriteFlags{})).error, EPERM);
  EXPECT_EQ(run_coroutine(io, volume->zero(0, kRegion, ZeroFlags{})).error, EPERM);
  EXPECT_EQ(read(0, 512), source_bytes(0, 512));
}

TEST_F(Routing, BlockStatusReportsHydrationStateAndAllocation) {
  source.add_zero_range(32 * kRegion, 8 * kRegion);
  open_ok();
  ASSERT_TRUE(write(2 * kRegion, std::vector<std::byte>(2 * kRegion, std::byte{1})).ok());
  auto contexts = volume->meta_contexts();
  ASSERT_EQ(contexts.size(), 2u);
  EXPECT_EQ(contexts[0], "base:allocation");
  EXPECT_EQ(contexts[1], "hydrate:state");
  ExtentList state;
  ASSERT_TRUE(run_coroutine(io, volume->block_status(1, 0, 8 * kRegion, 100, state)).ok());
  ASSERT_GE(state.size(), 3u);
  EXPECT_EQ(state[0], (Extent{2 * kRegion, 0}));
  EXPECT_EQ(state[1], (Extent{2 * kRegion, kStateHydrated}));
  // Unhydrated source hole: the source's own answer (before any scan).
  ExtentList alloc;
  ASSERT_TRUE(run_coroutine(io, volume->block_status(0, 32 * kRegion, 8 * kRegion, 100, alloc)).ok());
  ASSERT_FALSE(alloc.empty());
  EXPECT_TRUE(alloc[0].flags & kAllocationZero);
}

}  // namespace
}  // namespace hydrate::test
