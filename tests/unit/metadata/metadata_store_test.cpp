#include "engine/metadata_store.h"

#include <gtest/gtest.h>

#include <cstring>

#include "tests/unit/metadata/metadata_test_util.h"

namespace hydrate {
namespace {

namespace fmt = metadata_format;
using test::commit_transaction;
using test::contains;
using test::MemoryBlockDevice;
using Op = MemoryBlockDevice::Operation;
using Logged = MemoryBlockDevice::LoggedOperation;

constexpr uint64_t kBitmap = fmt::kBitmapOffset;

class MetadataStoreTest : public ::testing::Test {
 protected:
  MetadataStoreTest()
      : geometry(test::small_region_geometry()),
        device(MetadataStore::required_size(geometry), "meta.img"),
        map(geometry.source_size, geometry.region_size) {
    IoResult created = run_to_completion(MetadataStore::create(device, geometry, store));
    EXPECT_TRUE(created) << created.message;
    device.clear_log();
  }

  // Opens the device afresh, as a restarted server would.
  IoResult reopen(std::unique_ptr<RegionMap>& fresh, const CloneGeometry& expected) {
    std::unique_ptr<MetadataStore> reopened;
    return run_to_completion(
        MetadataStore::open(device, MetadataExpectations::exactly(expected), fresh, reopened));
  }
  IoResult reopen(std::unique_ptr<RegionMap>& fresh) { return reopen(fresh, geometry); }

  std::array<fmt::DecodedSlot, 2> slots() {
    std::array<fmt::DecodedSlot, 2> out;
    EXPECT_TRUE(run_to_completion(MetadataStore::read_superblocks(device, out)));
    return out;
  }

  uint64_t bitmap_word(uint64_t word) {
    std::vector<std::byte> bytes = device.contents();
    return fmt::load_word(&bytes[kBitmap + word * 8]);
  }

  // Rewrites slot `index` with `mutate` applied, keeping (or breaking) its checksum.
  template <typename Mutate>
  void rewrite_slot(int index, Mutate mutate) {
    fmt::Superblock sb = slots()[index].superblock;
    mutate(sb);
    auto image = fmt::encode(sb);
    device.set_contents(index * fmt::kSlotSize, image);
  }
  void corrupt_byte(uint64_t offset) {
    std::vector<std::byte> bytes = device.contents();
    std::byte flipped = bytes[offset] ^ std::byte{0xff};
    device.set_contents(offset, std::span<const std::byte>(&flipped, 1));
  }

  CloneGeometry geometry;
  MemoryBlockDevice device;
  RegionMap map;
  std::unique_ptr<MetadataStore> store;
};

TEST_F(MetadataStoreTest, RequiredSizeIsBothSlotsPlusTheBitmapInWholeBlocks) {
  EXPECT_EQ(MetadataStore::required_size(geometry), 8192u + 8 * 4096);
  CloneGeometry terabyte{uint64_t{1} << 40, uint64_t{1} << 40, 65536, "x"};
  EXPECT_EQ(MetadataStore::required_size(terabyte), 8192u + (uint64_t{2} << 20));
}

TEST_F(MetadataStoreTest, CreateZeroesThenWritesBothSlotsAndFlushes) {
  MemoryBlockDevice fresh(MetadataStore::required_size(geometry) + 4096);
  std::vector<std::byte> garbage(fresh.size(), std::byte{0x5a});
  fresh.set_contents(0, garbage);
  std::unique_ptr<MetadataStore> created;
  ASSERT_TRUE(run_to_completion(MetadataStore::create(fresh, geometry, created)));
  const uint64_t needed = MetadataStore::required_size(geometry);
  EXPECT_EQ(fresh.log(), (std::vector<Logged>{{Op::write_zeroes, 0, needed, false},
                                              {Op::flush, 0, 0, false},
                                              {Op::write, 0, 8192, false},
                                              {Op::flush, 0, 0, false}}));
  std::array<fmt::DecodedSlot, 2> decoded;
  ASSERT_TRUE(run_to_completion(MetadataStore::read_superblocks(fresh, decoded)));
  ASSERT_EQ(decoded[0].status, fmt::SlotStatus::valid) << decoded[0].problem;
  ASSERT_EQ(decoded[1].status, fmt::SlotStatus::valid) << decoded[1].problem;
  EXPECT_EQ(decoded[0].superblock.generation, 1u);
  EXPECT_EQ(decoded[1].superblock.generation, 0u);
  EXPECT_EQ(decoded[0].superblock.clone_uuid, decoded[1].superblock.clone_uuid);
  EXPECT_NE(decoded[0].superblock.clone_uuid, fmt::Uuid{});
  EXPECT_NE(decoded[0].superblock.clone_uuid, store->superblock().clone_uuid);
  EXPECT_EQ(created->summary().generation, 1u);
  EXPECT_EQ(created->summary().active_slot, 0);
  // The bitmap is zero, whatever was there before.
  std::vector<std::byte> bytes = fresh.contents();
  for (uint64_t i = kBitmap; i < needed; ++i) ASSERT_EQ(bytes[i], std::byte{0}) << i;
}

TEST_F(MetadataStoreTest, CreateRefusesADeviceTooSmallWithENOSPC) {
  MemoryBlockDevice small(MetadataStore::required_size(geometry) - 1, "small.img");
  std::unique_ptr<MetadataStore> created;
  IoResult result = run_to_completion(MetadataStore::create(small, geometry, created));
  EXPECT_EQ(result.error, ENOSPC);
  EXPECT_TRUE(contains(result.message, "small.img")) << result.message;
  EXPECT_TRUE(contains(result.message, std::to_string(MetadataStore::required_size(geometry))))
      << result.message;
  EXPECT_EQ(created, nullptr);
  EXPECT_TRUE(small.log().empty());
}

TEST_F(MetadataStoreTest, CreateRefusesInvalidGeometryNamingTheField) {
  struct Case {
    CloneGeometry geometry;
    const char* message;
  };
  const uint64_t g = uint64_t{1} << 30;
  const Case cases[] = {
      {{g, g, 3000, "x"}, "region size 3000 is not a power of two"},
      {{g, g, 2048, "x"}, "region size 2048"},
      {{0, 0, 4096, "x"}, "source size is 0"},
      {{g, g - 1, 4096, "x"}, "destination size 1073741823 is smaller than source size"},
      {{g, g, 4096, ""}, "source identity is empty"},
      {{g, g, 4096, std::string(1025, 'a')}, "source identity is 1025 bytes"},
      {{uint64_t{1} << 50, uint64_t{1} << 50, 4096, "x"}, "choose a larger region size"},
  };
  for (const Case& c : cases) {
    std::unique_ptr<MetadataStore> created;
    IoResult result = run_to_completion(MetadataStore::create(device, c.geometry, created));
    EXPECT_EQ(result.error, EINVAL) << c.message;
    EXPECT_TRUE(contains(result.message, c.message)) << result.message;
  }
}

TEST_F(MetadataStoreTest, CommittedBitsSurviveAReopen) {
  map.set(0, 1);
  map.set(4095, 3);
  map.set(200000, 1000);
  ASSERT_TRUE(commit_transaction(map, *store));
  EXPECT_EQ(store->summary().generation, 2u);
  EXPECT_EQ(store->summary().active_slot, 1);
  EXPECT_EQ(store->summary().committed_regions, 1004u);

  std::unique_ptr<RegionMap> fresh;
  std::unique_ptr<MetadataStore> reopened;
  IoResult opened = run_to_completion(
      MetadataStore::open(device, MetadataExpectations::exactly(geometry), fresh, reopened));
  ASSERT_TRUE(opened) << opened.message;
  EXPECT_EQ(fresh->hydrated_regions(), 1004u);
  EXPECT_EQ(fresh->committed_regions(), 1004u);
  for (uint64_t w = 0; w < map.word_count(); ++w)
    ASSERT_EQ(fresh->committed_word(w), map.committed_word(w));
  EXPECT_EQ(reopened->summary().generation, 2u);
  EXPECT_EQ(reopened->summary().active_slot, 1);
  EXPECT_EQ(reopened->geometry().source_identity, geometry.source_identity);
  EXPECT_EQ(reopened->superblock().clone_uuid, store->superblock().clone_uuid);
  // A reopened store commits on top: the other slot, the next generation.
  fresh->set(7, 1);
  ASSERT_TRUE(commit_transaction(*fresh, *reopened));
  EXPECT_EQ(reopened->summary().generation, 3u);
  EXPECT_EQ(reopened->summary().active_slot, 0);
}

TEST_F(MetadataStoreTest, CommitWritesExactlyTheBlocksHoldingTheTransactionCoalescingAdjacent) {
  // 4 KiB regions: one bitmap block holds 512 words = 32768 regions.
  map.set(3, 1);                  // block 0
  map.set(2 * 32768 + 5, 1);      // block 2
  map.set(3 * 32768 + 32767, 2);  // blocks 3 and 4: a range straddling them
  map.set(7 * 32768, 1);          // block 7
  ASSERT_TRUE(commit_transaction(map, *store));
  EXPECT_EQ(device.log(), (std::vector<Logged>{{Op::write, kBitmap, 4096, false},
                                               {Op::write, kBitmap + 2 * 4096, 3 * 4096, false},
                                               {Op::write, kBitmap + 7 * 4096, 4096, false},
                                               {Op::flush, 0, 0, false},
                                               {Op::write, 4096, 4096, false},
                                               {Op::flush, 0, 0, false}}));
}

TEST_F(MetadataStoreTest, CommitNeverWritesALiveOnlyBitButKeepsCommittedOnes) {
  map.set(1, 1);
  ASSERT_TRUE(commit_transaction(map, *store));
  map.set(2, 1);
  RegionMap::Transaction transaction = map.begin_commit();
  map.set(3, 1);   // same word: data not yet flushed, must not reach the metadata
  map.set(70, 1);  // same block, another word
  ASSERT_TRUE(run_to_completion(store->commit(map, transaction, 0)));
  map.finish_commit(std::move(transaction), true);
  EXPECT_EQ(bitmap_word(0), 0b110u);
  EXPECT_EQ(bitmap_word(1), 0u);
  device.clear_log();
  ASSERT_TRUE(commit_transaction(map, *store));
  EXPECT_EQ(bitmap_word(0), 0b1110u);
  EXPECT_EQ(bitmap_word(1), uint64_t{1} << 6);
}

TEST_F(MetadataStoreTest, SuperblocksAlternateWithRisingGenerations) {
  for (uint64_t round = 0; round < 5; ++round) {
    device.clear_log();
    map.set(round * 100, 1);
    ASSERT_TRUE(commit_transaction(map, *store));
    const uint64_t generation = round + 2;
    const int slot = static_cast<int>((round + 1) % 2);
    EXPECT_EQ(store->summary().generation, generation);
    EXPECT_EQ(store->summary().active_slot, slot);
    EXPECT_EQ(device.log()[2], (Logged{Op::write, slot * 4096u, 4096, false}));
    auto decoded = slots();
    ASSERT_EQ(decoded[slot].status, fmt::SlotStatus::valid);
    ASSERT_EQ(decoded[1 - slot].status, fmt::SlotStatus::valid);
    EXPECT_EQ(decoded[slot].superblock.generation, generation);
    EXPECT_EQ(decoded[1 - slot].superblock.generation, generation - 1);
    EXPECT_EQ(decoded[slot].superblock.committed_regions, round + 1);
  }
}

TEST_F(MetadataStoreTest, EmptyCommitWritesNothingAndAFlagsOnlyCommitWritesOnlyTheSuperblock) {
  ASSERT_TRUE(commit_transaction(map, *store));
  EXPECT_TRUE(device.log().empty());
  EXPECT_EQ(store->summary().generation, 1u);
  ASSERT_TRUE(commit_transaction(map, *store, kMetaFlagSourceDiscarded));
  EXPECT_EQ(device.log(),
            (std::vector<Logged>{{Op::write, 4096, 4096, false}, {Op::flush, 0, 0, false}}));
  EXPECT_EQ(store->summary().flags, kMetaFlagSourceDiscarded);
  EXPECT_EQ(slots()[1].superblock.flags, kMetaFlagSourceDiscarded);
}

TEST_F(MetadataStoreTest, CompleteFlagRoundTrips) {
  map.set(0, map.region_count());
  ASSERT_TRUE(commit_transaction(map, *store, kMetaFlagComplete));
  CloneGeometry recorded;
  MetadataSummary summary;
  std::unique_ptr<RegionMap> loaded;
  ASSERT_TRUE(run_to_completion(MetadataStore::inspect(device, recorded, summary, loaded)));
  EXPECT_EQ(summary.flags, kMetaFlagComplete);
  EXPECT_TRUE(loaded->complete());
}

TEST_F(MetadataStoreTest, CommitRefusesMalformedTransactionsAndUnknownFlags) {
  RegionMap::Transaction unsorted;
  unsorted.words = {{5, 1}, {2, 1}};
  unsorted.regions = 2;
  IoResult result = run_to_completion(store->commit(map, unsorted, 0));
  EXPECT_EQ(result.error, EINVAL);
  EXPECT_TRUE(contains(result.message, "malformed transaction")) << result.message;
  RegionMap::Transaction past_end;
  past_end.words = {{map.word_count(), 1}};
  past_end.regions = 1;
  EXPECT_EQ(run_to_completion(store->commit(map, past_end, 0)).error, EINVAL);
  result = run_to_completion(store->commit(map, RegionMap::Transaction{}, 0x80));
  EXPECT_TRUE(contains(result.message, "unknown state flags")) << result.message;
  RegionMap other(geometry.source_size * 2, geometry.region_size);
  EXPECT_EQ(run_to_completion(store->commit(other, RegionMap::Transaction{}, 0)).error, EINVAL);
  EXPECT_TRUE(device.log().empty());
}

TEST_F(MetadataStoreTest, InspectReportsWhatIsRecorded) {
  map.set(10, 20);
  ASSERT_TRUE(commit_transaction(map, *store));
  CloneGeometry recorded;
  MetadataSummary summary;
  std::unique_ptr<RegionMap> loaded;
  ASSERT_TRUE(run_to_completion(MetadataStore::inspect(device, recorded, summary, loaded)));
  EXPECT_EQ(recorded.source_size, geometry.source_size);
  EXPECT_EQ(recorded.destination_size, geometry.destination_size);
  EXPECT_EQ(recorded.region_size, geometry.region_size);
  EXPECT_EQ(recorded.source_identity, geometry.source_identity);
  EXPECT_EQ(summary.generation, 2u);
  EXPECT_EQ(summary.active_slot, 1);
  EXPECT_EQ(summary.committed_regions, 20u);
  EXPECT_GT(summary.commit_time_unix_ms, 0u);
  ASSERT_NE(loaded, nullptr);
  EXPECT_EQ(loaded->hydrated_regions(), 20u);
  EXPECT_EQ(loaded->find_first_set(0), 10u);
}

// --- I7: refusals ---------------------------------------------------------------------------

TEST_F(MetadataStoreTest, EachGeometryMismatchIsRefusedNamingTheFieldAndBothValues) {
  struct Case {
    CloneGeometry expected;
    std::string message;
  };
  CloneGeometry g = geometry;
  const Case cases[] = {
      {{uint64_t{1} << 31, uint64_t{1} << 31, 4096, g.source_identity},
       "source size differs: metadata says 1073741824, source has 2147483648"},
      {{g.source_size, uint64_t{1} << 31, 4096, g.source_identity},
       "destination size differs: metadata says 1073741824, destination has 2147483648"},
      {{g.source_size, g.destination_size, 65536, g.source_identity},
       "region size differs: metadata says 4096, configuration says 65536"},
      {{g.source_size, g.destination_size, 4096, "nbd://other/vm2"},
       "source identity differs: metadata says \"nbd://backup/vm1\", source is "
       "\"nbd://other/vm2\""},
  };
  for (const Case& c : cases) {
    std::unique_ptr<RegionMap> fresh;
    IoResult result = reopen(fresh, c.expected);
    EXPECT_EQ(result.error, EINVAL);
    EXPECT_TRUE(contains(result.message, c.message)) << result.message;
    EXPECT_TRUE(contains(result.message, "meta.img")) << result.message;
  }
}

TEST_F(MetadataStoreTest, I7_UnsetExpectationsAreAdoptedFromTheMetadata) {
  // A restart knows the source identity and maybe a configured region size; the source's size
  // only once it answers. What is not expected is taken as recorded, and the map is built for it.
  MetadataExpectations partial;
  partial.source_identity = geometry.source_identity;
  std::unique_ptr<RegionMap> fresh;
  std::unique_ptr<MetadataStore> reopened;
  IoResult opened = run_to_completion(MetadataStore::open(device, partial, fresh, reopened));
  ASSERT_TRUE(opened) << opened.message;
  EXPECT_EQ(fresh->device_size(), geometry.source_size);
  EXPECT_EQ(fresh->region_size(), geometry.region_size);
  EXPECT_EQ(reopened->geometry().source_identity, geometry.source_identity);
}

TEST_F(MetadataStoreTest, I7_CheckAfterOpenRefusesASourceOfAnotherSizeWithOpensMessage) {
  std::unique_ptr<RegionMap> fresh;
  std::unique_ptr<MetadataStore> reopened;
  MetadataExpectations partial;
  partial.source_identity = geometry.source_identity;
  ASSERT_TRUE(run_to_completion(MetadataStore::open(device, partial, fresh, reopened)));
  MetadataExpectations answered;
  answered.source_size = geometry.source_size;
  EXPECT_TRUE(reopened->check(answered));
  answered.source_size = geometry.source_size * 2;
  IoResult refused = reopened->check(answered);
  EXPECT_EQ(refused.error, EINVAL);
  EXPECT_TRUE(contains(refused.message, "metadata meta.img: source size differs: metadata says " +
                                            std::to_string(geometry.source_size) + ", source has " +
                                            std::to_string(geometry.source_size * 2)))
      << refused.message;
}

TEST_F(MetadataStoreTest, BadMagicIsRefused) {
  corrupt_byte(0);
  corrupt_byte(4096);
  std::unique_ptr<RegionMap> fresh;
  IoResult result = reopen(fresh);
  EXPECT_EQ(result.error, EINVAL);
  EXPECT_TRUE(contains(result.message, "not hydrate metadata: bad magic")) << result.message;
}

TEST_F(MetadataStoreTest, UnsupportedVersionIsRefusedEvenWithAValidOlderSlot) {
  map.set(1, 1);
  ASSERT_TRUE(commit_transaction(map, *store));  // slot 1 active, generation 2
  rewrite_slot(1, [](fmt::Superblock& sb) { sb.version = 2; });
  std::unique_ptr<RegionMap> fresh;
  IoResult result = reopen(fresh);
  EXPECT_EQ(result.error, EINVAL);
  EXPECT_TRUE(contains(result.message, "superblock slot 1 has unsupported format version 2"))
      << result.message;
}

TEST_F(MetadataStoreTest, BadChecksumInTheNewerSlotFallsBackToTheOlder) {
  map.set(1, 1);
  ASSERT_TRUE(commit_transaction(map, *store));  // generation 2 in slot 1
  map.set(2, 1);
  ASSERT_TRUE(commit_transaction(map, *store));  // generation 3 in slot 0
  corrupt_byte(200);                             // slot 0, inside the identity bytes
  std::unique_ptr<RegionMap> fresh;
  std::unique_ptr<MetadataStore> reopened;
  IoResult opened = run_to_completion(
      MetadataStore::open(device, MetadataExpectations::exactly(geometry), fresh, reopened));
  ASSERT_TRUE(opened) << opened.message;
  EXPECT_EQ(reopened->summary().generation, 2u);
  EXPECT_EQ(reopened->summary().active_slot, 1);
  // The bitmap is in place and monotonic: bits of the newer commit are still there (their data
  // was flushed before they were written).
  EXPECT_TRUE(fresh->test(1));
  EXPECT_TRUE(fresh->test(2));
  // The next commit overwrites the broken slot, never the good one.
  fresh->set(3, 1);
  device.clear_log();
  ASSERT_TRUE(commit_transaction(*fresh, *reopened));
  EXPECT_EQ(device.log()[2], (Logged{Op::write, 0, 4096, false}));
  EXPECT_EQ(slots()[0].superblock.generation, 3u);
}

TEST_F(MetadataStoreTest, BadChecksumInBothSlotsIsRefused) {
  corrupt_byte(300);
  corrupt_byte(4096 + 300);
  std::unique_ptr<RegionMap> fresh;
  IoResult result = reopen(fresh);
  EXPECT_EQ(result.error, EINVAL);
  EXPECT_TRUE(contains(result.message, "bad checksum in both superblock slots")) << result.message;
}

TEST_F(MetadataStoreTest, InconsistentSlotIsRefusedNotSkipped) {
  rewrite_slot(1, [](fmt::Superblock& sb) { sb.region_count += 1; });  // checksum still valid
  std::unique_ptr<RegionMap> fresh;
  IoResult result = reopen(fresh);
  EXPECT_EQ(result.error, EINVAL);
  EXPECT_TRUE(contains(result.message, "superblock slot 1 is inconsistent: region count"))
      << result.message;
}

TEST_F(MetadataStoreTest, TruncatedDeviceIsRefused) {
  device.resize(MetadataStore::required_size(geometry) - 4096);
  std::unique_ptr<RegionMap> fresh;
  IoResult result = reopen(fresh);
  EXPECT_EQ(result.error, EINVAL);
  EXPECT_TRUE(contains(result.message,
                       "truncated: the device is 36864 bytes, the recorded "
                       "geometry needs 40960"))
      << result.message;
  device.resize(100);
  result = reopen(fresh);
  EXPECT_TRUE(contains(result.message,
                       "truncated: the device is 100 bytes, smaller than the two "
                       "superblock slots"))
      << result.message;
}

TEST_F(MetadataStoreTest, BitmapWithBitsPastTheLastRegionIsRefused) {
  CloneGeometry odd{100 * 4096, 100 * 4096, 4096, "file:/dev/sdb"};  // 100 regions
  MemoryBlockDevice small(MetadataStore::required_size(odd));
  std::unique_ptr<MetadataStore> created;
  ASSERT_TRUE(run_to_completion(MetadataStore::create(small, odd, created)));
  std::byte bytes[8];
  fmt::store_word(bytes, uint64_t{1} << 40);  // region 104 of word 1
  small.set_contents(kBitmap + 8, bytes);
  std::unique_ptr<RegionMap> fresh;
  std::unique_ptr<MetadataStore> reopened;
  IoResult result = run_to_completion(
      MetadataStore::open(small, MetadataExpectations::exactly(odd), fresh, reopened));
  EXPECT_EQ(result.error, EINVAL);
  EXPECT_TRUE(contains(result.message, "bits are set past the last region (99)")) << result.message;
}

TEST_F(MetadataStoreTest, BitmapWithFewerBitsThanCommittedIsRefused) {
  map.set(0, 64);
  ASSERT_TRUE(commit_transaction(map, *store));
  std::byte zero[8] = {};
  device.set_contents(kBitmap, zero);  // a lost bitmap write
  std::unique_ptr<RegionMap> fresh;
  IoResult result = reopen(fresh);
  EXPECT_EQ(result.error, EINVAL);
  EXPECT_TRUE(
      contains(result.message, "holds 0 hydrated regions but superblock generation 2 recorded 64"))
      << result.message;
}

}  // namespace
}  // namespace hydrate
