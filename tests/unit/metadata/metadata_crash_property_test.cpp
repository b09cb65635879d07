// Property: whatever write a power cut interrupts (and however much of it lands), reopening
// the metadata yields bits that
//   - include every bit of every commit that completed (durable means durable), and
//   - include nothing outside committed bits and the bits of the commit in flight (I2: only
//     bits whose data was flushed before the commit began can ever be on disk).
#include <gtest/gtest.h>

#include <random>

#include "engine/metadata_store.h"
#include "tests/unit/metadata/metadata_test_util.h"

namespace hydrate {
namespace {

using test::contains;
using test::MemoryBlockDevice;
using Op = MemoryBlockDevice::Operation;

// Three bitmap blocks plus a short tail: 4 KiB regions, 3 * 32768 + 77 regions.
const CloneGeometry kGeometry{(3 * 32768 + 77) * uint64_t{4096} - 1000,
                              (3 * 32768 + 77) * uint64_t{4096}, 4096, "nbd://src/prop"};

void random_sets(std::mt19937_64& random, RegionMap& map) {
  const uint64_t regions = map.region_count();
  const int operations = 1 + static_cast<int>(random() % 6);
  for (int i = 0; i < operations; ++i) {
    switch (random() % 4) {
      case 0:  // a big run, as WRITE_ZEROES of a large range
        map.set(random() % regions, random() % 40000);
        break;
      case 1: {  // near a block boundary
        const uint64_t boundary = (random() % 4) * 32768;
        map.set(boundary > 0 ? boundary - 1 + random() % 3 : random() % 3, 1 + random() % 130);
        break;
      }
      default:  // scattered single regions
        map.set(random() % regions, 1);
        break;
    }
  }
}

struct Words {
  std::vector<uint64_t> bits;
  explicit Words(uint64_t count) : bits(count) {}
  void add(const RegionMap::Transaction& transaction) {
    for (auto [word, value] : transaction.words) bits[word] |= value;
  }
};

TEST(MetadataCrashProperty, ReopenAfterAPowerCutAtAnyWrite) {
  for (uint64_t trial = 0; trial < 400; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    std::mt19937_64 random(trial);
    MemoryBlockDevice device(MetadataStore::required_size(kGeometry));
    std::unique_ptr<MetadataStore> store;
    ASSERT_TRUE(run_to_completion(MetadataStore::create(device, kGeometry, store)));

    // The power cut: the k-th write from now on fails, with 0, some sectors or all of it
    // landing, and nothing reaches the device afterwards.
    const uint64_t k = 1 + random() % 25;
    const uint64_t choice = random() % 3;
    const uint64_t landed = choice == 0 ? 0 : choice == 1 ? 512 * (1 + random() % 7) : ~0ull;
    device.fail_from(Op::write, k, EIO, landed);

    RegionMap map(kGeometry.source_size, kGeometry.region_size);
    Words committed(map.word_count());
    Words in_flight(map.word_count());
    bool crashed = false;
    for (int round = 0; round < 12; ++round) {
      random_sets(random, map);
      RegionMap::Transaction transaction = map.begin_commit();
      const uint32_t flags = map.complete() ? kMetaFlagComplete : 0;
      IoResult result = run_to_completion(store->commit(map, transaction, flags));
      if (result.ok()) {
        ASSERT_FALSE(crashed) << "a commit succeeded after the power cut";
        committed.add(transaction);
      } else if (!crashed) {
        crashed = true;
        in_flight.add(transaction);
      }
      map.finish_commit(std::move(transaction), result.ok());
    }

    device.clear_faults();  // power back
    std::unique_ptr<RegionMap> loaded;
    std::unique_ptr<MetadataStore> reopened;
    IoResult opened = run_to_completion(
        MetadataStore::open(device, MetadataExpectations::exactly(kGeometry), loaded, reopened));
    ASSERT_TRUE(opened) << opened.message;
    for (uint64_t w = 0; w < loaded->word_count(); ++w) {
      const uint64_t bits = loaded->committed_word(w);
      ASSERT_EQ(bits & committed.bits[w], committed.bits[w]) << "committed bits lost in word " << w;
      ASSERT_EQ(bits & ~(committed.bits[w] | in_flight.bits[w]), 0u)
          << "bits from no commit in word " << w;
    }
    // And the reopened store keeps working.
    loaded->set(0, 1);
    RegionMap::Transaction transaction = loaded->begin_commit();
    IoResult again = run_to_completion(reopened->commit(*loaded, transaction, 0));
    ASSERT_TRUE(again) << again.message;
    loaded->finish_commit(std::move(transaction), true);
  }
}

TEST(MetadataCrashProperty, PowerCutDuringCreateLeavesNoHalfMadeClone) {
  // The steps of create: write_zeroes, flush, write (both slots), flush.
  const std::pair<Op, uint64_t> cuts[] = {
      {Op::write_zeroes, 0}, {Op::flush, 0}, {Op::write, 0}, {Op::write, 512}, {Op::write, 4608}};
  for (auto [op, landed] : cuts) {
    SCOPED_TRACE(std::string(to_string(op)) + " landed " + std::to_string(landed));
    MemoryBlockDevice device(MetadataStore::required_size(kGeometry));
    // An older clone of the same geometry was here, with hydrated regions.
    {
      std::unique_ptr<MetadataStore> old;
      ASSERT_TRUE(run_to_completion(MetadataStore::create(device, kGeometry, old)));
      RegionMap map(kGeometry.source_size, kGeometry.region_size);
      map.set(0, 5000);
      ASSERT_TRUE(test::commit_transaction(map, *old));
    }
    device.fail_from(op, 1, EIO, landed);
    std::unique_ptr<MetadataStore> store;
    EXPECT_FALSE(run_to_completion(MetadataStore::create(device, kGeometry, store)));
    device.clear_faults();
    std::unique_ptr<RegionMap> loaded;
    std::unique_ptr<MetadataStore> reopened;
    IoResult opened = run_to_completion(
        MetadataStore::open(device, MetadataExpectations::exactly(kGeometry), loaded, reopened));
    if (op == Op::write_zeroes) {
      // Nothing happened yet: the old clone is intact.
      ASSERT_TRUE(opened) << opened.message;
      EXPECT_EQ(loaded->hydrated_regions(), 5000u);
    } else if (opened) {
      // A fresh clone: never the old clone's bits under a new superblock.
      EXPECT_EQ(loaded->hydrated_regions(), 0u);
      EXPECT_EQ(reopened->summary().committed_regions, 0u);
    } else {
      EXPECT_TRUE(contains(opened.message, "superblock")) << opened.message;
    }
  }
}

}  // namespace
}  // namespace hydrate
