// A failed write or flush during a commit returns the error with its context, leaves the
// previously committed state loadable, and a retry commits the same bits.
#include <gtest/gtest.h>

#include "engine/metadata_store.h"
#include "tests/unit/metadata/metadata_test_util.h"

namespace hydrate {
namespace {

namespace fmt = metadata_format;
using test::commit_transaction;
using test::contains;
using test::MemoryBlockDevice;
using Op = MemoryBlockDevice::Operation;

class MetadataFaults : public ::testing::Test {
 protected:
  MetadataFaults()
      : geometry(test::small_region_geometry()),
        device(MetadataStore::required_size(geometry), "meta.img"),
        map(geometry.source_size, geometry.region_size) {
    EXPECT_TRUE(run_to_completion(MetadataStore::create(device, geometry, store)));
    // Committed before the fault: must survive every failure below.
    map.set(100, 10);
    EXPECT_TRUE(commit_transaction(map, *store));
    map.set(40000, 5);  // the transaction that will fail
  }

  // Reopens the device as after a restart; returns the loaded map's generation.
  uint64_t reopen_and_check_old_state_is_loadable() {
    std::unique_ptr<RegionMap> fresh;
    std::unique_ptr<MetadataStore> reopened;
    IoResult opened = run_to_completion(
        MetadataStore::open(device, MetadataExpectations::exactly(geometry), fresh, reopened));
    EXPECT_TRUE(opened) << opened.message;
    if (!opened) return 0;
    EXPECT_TRUE(fresh->all_set(100, 10));
    // Bits of the failed transaction may be there (bitmap blocks are written in place, after
    // the destination flush) but nothing else.
    EXPECT_EQ(fresh->find_first_set(110), fresh->test(40000) ? 40000u : fresh->region_count());
    return reopened->summary().generation;
  }

  void expect_retry_commits_everything() {
    device.clear_faults();
    IoResult retried = commit_transaction(map, *store);
    ASSERT_TRUE(retried) << retried.message;
    EXPECT_EQ(store->summary().committed_regions, 15u);
    std::unique_ptr<RegionMap> fresh;
    std::unique_ptr<MetadataStore> reopened;
    ASSERT_TRUE(run_to_completion(
        MetadataStore::open(device, MetadataExpectations::exactly(geometry), fresh, reopened)));
    EXPECT_TRUE(fresh->all_set(40000, 5));
    EXPECT_EQ(fresh->hydrated_regions(), 15u);
  }

  CloneGeometry geometry;
  MemoryBlockDevice device;
  RegionMap map;
  std::unique_ptr<MetadataStore> store;
};

TEST_F(MetadataFaults, FailedBitmapWrite) {
  device.fail_once(Op::write, 1, EIO);
  IoResult result = commit_transaction(map, *store);
  EXPECT_EQ(result.error, EIO);
  EXPECT_TRUE(contains(result.message, "metadata meta.img: writing bitmap blocks at offset 12288"))
      << result.message;
  EXPECT_EQ(store->summary().generation, 2u);
  EXPECT_EQ(map.committed_regions(), 10u);
  EXPECT_EQ(map.transaction_regions(), 5u);  // merged back for the retry
  EXPECT_EQ(reopen_and_check_old_state_is_loadable(), 2u);
  expect_retry_commits_everything();
  EXPECT_EQ(store->summary().generation, 3u);
}

TEST_F(MetadataFaults, FailedFlushAfterTheBitmap) {
  device.fail_once(Op::flush, 1, EIO);
  IoResult result = commit_transaction(map, *store);
  EXPECT_EQ(result.error, EIO);
  EXPECT_TRUE(contains(result.message, "flush after the bitmap writes failed")) << result.message;
  EXPECT_EQ(store->summary().generation, 2u);
  EXPECT_EQ(reopen_and_check_old_state_is_loadable(), 2u);
  expect_retry_commits_everything();
}

TEST_F(MetadataFaults, FailedSuperblockWrite) {
  device.fail_once(Op::write, 2, ENOSPC);
  IoResult result = commit_transaction(map, *store);
  EXPECT_EQ(result.error, ENOSPC);
  EXPECT_TRUE(contains(result.message, "writing superblock slot 0 (generation 3) at offset 0"))
      << result.message;
  EXPECT_EQ(store->summary().generation, 2u);
  EXPECT_EQ(store->summary().active_slot, 1);
  EXPECT_EQ(reopen_and_check_old_state_is_loadable(), 2u);
  expect_retry_commits_everything();
  EXPECT_EQ(store->summary().generation, 3u);
}

TEST_F(MetadataFaults, SectorTornSuperblockWriteIsWhollyNewBecauseEveryChangingFieldIsInSector0) {
  device.fail_once(Op::write, 2, EIO, 512);  // one sector of the new slot lands
  EXPECT_FALSE(commit_transaction(map, *store));
  std::array<fmt::DecodedSlot, 2> slots;
  ASSERT_TRUE(run_to_completion(MetadataStore::read_superblocks(device, slots)));
  ASSERT_EQ(slots[0].status, fmt::SlotStatus::valid) << slots[0].problem;
  EXPECT_EQ(slots[0].superblock.generation, 3u);
  EXPECT_EQ(reopen_and_check_old_state_is_loadable(), 3u);
  expect_retry_commits_everything();
}

TEST_F(MetadataFaults, TornSuperblockWriteFallsBackToTheActiveSlot) {
  device.fail_once(Op::write, 2, EIO, 20);  // torn inside the first sector
  EXPECT_FALSE(commit_transaction(map, *store));
  std::array<fmt::DecodedSlot, 2> slots;
  ASSERT_TRUE(run_to_completion(MetadataStore::read_superblocks(device, slots)));
  EXPECT_EQ(slots[0].status, fmt::SlotStatus::bad_checksum);
  EXPECT_EQ(slots[1].status, fmt::SlotStatus::valid);
  EXPECT_EQ(reopen_and_check_old_state_is_loadable(), 2u);
  expect_retry_commits_everything();
}

TEST_F(MetadataFaults, FailedFlushAfterTheSuperblock) {
  device.fail_once(Op::flush, 2, EIO);
  IoResult result = commit_transaction(map, *store);
  EXPECT_EQ(result.error, EIO);
  EXPECT_TRUE(contains(result.message, "flush after writing superblock generation 3 failed"))
      << result.message;
  EXPECT_EQ(store->summary().generation, 2u);
  // This fake has no volatile cache, so the unflushed slot did land: either generation is a
  // correct answer after a real power cut.
  uint64_t generation = reopen_and_check_old_state_is_loadable();
  EXPECT_TRUE(generation == 2 || generation == 3) << generation;
  // The retry rewrites the same (non-active) slot, never the one the store still relies on.
  device.clear_log();
  expect_retry_commits_everything();
  EXPECT_EQ(device.log()[2].offset, 0u);
}

TEST_F(MetadataFaults, FailedReadsAreReportedWithContext) {
  device.fail_once(Op::read, 1, EIO);
  std::unique_ptr<RegionMap> fresh;
  std::unique_ptr<MetadataStore> reopened;
  IoResult result = run_to_completion(
      MetadataStore::open(device, MetadataExpectations::exactly(geometry), fresh, reopened));
  EXPECT_EQ(result.error, EIO);
  EXPECT_TRUE(contains(result.message, "metadata meta.img: reading the superblock slots"))
      << result.message;
  device.fail_once(Op::read, 2, EIO);
  result = run_to_completion(
      MetadataStore::open(device, MetadataExpectations::exactly(geometry), fresh, reopened));
  EXPECT_TRUE(contains(result.message, "reading the bitmap at offset 8192")) << result.message;
  EXPECT_EQ(reopened, nullptr);
}

TEST_F(MetadataFaults, FailedCreateStepsAreReported) {
  MemoryBlockDevice fresh(MetadataStore::required_size(geometry), "new.img");
  std::unique_ptr<MetadataStore> created;
  const std::pair<Op, const char*> steps[] = {
      {Op::write_zeroes, "zeroing 40960 bytes at offset 0 failed"},
      {Op::write, "writing the superblock slots at offset 0 failed"},
  };
  for (auto [op, message] : steps) {
    fresh.fail_once(op, 1, EIO);
    IoResult result = run_to_completion(MetadataStore::create(fresh, geometry, created));
    EXPECT_EQ(result.error, EIO);
    EXPECT_TRUE(contains(result.message, message)) << result.message;
    EXPECT_EQ(created, nullptr);
  }
}

}  // namespace
}  // namespace hydrate
