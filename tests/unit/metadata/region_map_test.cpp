#include "engine/region_map.h"

#include <gtest/gtest.h>

#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

namespace hydrate {
namespace {

constexpr uint32_t k64K = 64 * 1024;

// The obvious bit-by-bit model every word-wise answer is checked against.
struct ReferenceMap {
  std::vector<bool> bits;
  explicit ReferenceMap(uint64_t regions) : bits(regions) {}
  uint64_t set(uint64_t first, uint64_t count) {
    uint64_t changed = 0;
    for (uint64_t r = first; r < first + count && r < bits.size(); ++r)
      if (!bits[r]) bits[r] = true, ++changed;
    return changed;
  }
  uint64_t find(uint64_t from, bool value) const {
    for (uint64_t r = from; r < bits.size(); ++r)
      if (bits[r] == value) return r;
    return bits.size();
  }
  uint64_t run(uint64_t first, uint64_t max) const {
    if (first >= bits.size()) return 0;
    uint64_t n = 0;
    while (first + n < bits.size() && n < max && bits[first + n] == bits[first]) ++n;
    return n;
  }
};

TEST(RegionMap, RejectsRegionSizesOutsideThePowersOfTwoFrom4KiBTo1GiB) {
  for (uint32_t bad : {0u, 2048u, 3000u, 65537u, 1u << 31}) {
    try {
      RegionMap map(1 << 20, bad);
      FAIL() << "region size " << bad << " accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(std::to_string(bad)), std::string::npos) << e.what();
    }
  }
  EXPECT_NO_THROW(RegionMap(1 << 20, 4096));
  EXPECT_NO_THROW(RegionMap(uint64_t{1} << 40, 1u << 30));
}

TEST(RegionMap, RejectsMoreRegionsThanTheLimit) {
  EXPECT_THROW(RegionMap((RegionMap::kMaxRegions + 1) * 4096, 4096), std::invalid_argument);
}

TEST(RegionMap, GeometryWithAShortLastRegion) {
  RegionMap map(10 * k64K + 100, k64K);
  EXPECT_EQ(map.region_count(), 11u);
  EXPECT_EQ(map.word_count(), 1u);
  EXPECT_EQ(map.region_shift(), 16u);
  EXPECT_EQ(map.region_range(0), (ByteRange{0, k64K}));
  EXPECT_EQ(map.region_range(10), (ByteRange{10 * k64K, 100}));
  EXPECT_EQ(map.region_range(11).length, 0u);
  EXPECT_EQ(map.region_of(10 * k64K + 99), 10u);
}

TEST(RegionMap, RegionsTouchingARange) {
  RegionMap map(10 * k64K + 100, k64K);
  using Pair = std::pair<uint64_t, uint64_t>;
  EXPECT_EQ(map.regions_touching(0, k64K), (Pair{0, 1}));
  EXPECT_EQ(map.regions_touching(1, k64K), (Pair{0, 2}));
  EXPECT_EQ(map.regions_touching(k64K - 1, 2), (Pair{0, 2}));
  EXPECT_EQ(map.regions_touching(3 * k64K, 0), (Pair{3, 3}));
  EXPECT_EQ(map.regions_touching(10 * k64K + 50, 1000), (Pair{10, 11}));  // clipped to the end
  EXPECT_EQ(map.regions_touching(20 * k64K, 10), (Pair{11, 11}));         // past the end
}

TEST(RegionMap, SetAndTestAcrossAWordBoundary) {
  RegionMap map(200 * uint64_t{k64K}, k64K);
  EXPECT_EQ(map.set(60, 10), 10u);
  EXPECT_FALSE(map.test(59));
  EXPECT_TRUE(map.test(60));
  EXPECT_TRUE(map.test(63));
  EXPECT_TRUE(map.test(64));
  EXPECT_TRUE(map.test(69));
  EXPECT_FALSE(map.test(70));
  EXPECT_EQ(map.hydrated_regions(), 10u);
  // Overlap: only the new bits count.
  EXPECT_EQ(map.set(65, 10), 5u);
  EXPECT_EQ(map.hydrated_regions(), 15u);
  EXPECT_EQ(map.set(60, 15), 0u);
}

TEST(RegionMap, SetIsClippedToTheLastRegionAndIgnoresRegionsPastIt) {
  RegionMap map(130 * uint64_t{k64K} - 1, k64K);  // 130 regions, the last one short
  EXPECT_EQ(map.set(125, 100), 5u);
  EXPECT_EQ(map.set(130, 1), 0u);
  EXPECT_EQ(map.set(500, 1), 0u);
  EXPECT_FALSE(map.test(130));
  EXPECT_TRUE(map.test(129));
  EXPECT_EQ(map.hydrated_regions(), 5u);
  RegionMap::Transaction t = map.begin_commit();
  ASSERT_EQ(t.words.size(), 2u);
  EXPECT_EQ(t.words[1].first, 2u);
  EXPECT_EQ(t.words[1].second, 0x3u);  // regions 128 and 129 only: nothing past the end
}

TEST(RegionMap, FindAndRunLengthAtWordBoundariesAndTheShortLastWord) {
  RegionMap map(130 * uint64_t{k64K}, k64K);
  EXPECT_EQ(map.find_first_set(0), 130u);
  EXPECT_EQ(map.find_first_clear(0), 0u);
  EXPECT_EQ(map.run_length(0, 1000), 130u);
  EXPECT_EQ(map.run_length(0, 64), 64u);

  map.set(63, 2);  // straddles words 0 and 1
  EXPECT_EQ(map.find_first_set(0), 63u);
  EXPECT_EQ(map.find_first_set(64), 64u);
  EXPECT_EQ(map.find_first_set(65), 130u);
  EXPECT_EQ(map.find_first_clear(63), 65u);
  EXPECT_EQ(map.run_length(63, 10), 2u);
  EXPECT_EQ(map.run_length(63, 1), 1u);
  EXPECT_EQ(map.run_length(0, 100), 63u);
  EXPECT_EQ(map.run_length(65, 1000), 65u);

  map.set(0, 130);
  EXPECT_TRUE(map.complete());
  // The unused bits of the last word are clear in memory, but are not regions.
  EXPECT_EQ(map.find_first_clear(0), 130u);
  EXPECT_EQ(map.find_first_clear(129), 130u);
  EXPECT_EQ(map.run_length(100, 1000), 30u);
  EXPECT_EQ(map.run_length(130, 10), 0u);
  EXPECT_EQ(map.find_first_set(130), 130u);
}

TEST(RegionMap, AllSet) {
  RegionMap map(256 * uint64_t{k64K}, k64K);
  map.set(10, 120);
  EXPECT_TRUE(map.all_set(10, 120));
  EXPECT_TRUE(map.all_set(64, 64));
  EXPECT_FALSE(map.all_set(9, 2));
  EXPECT_FALSE(map.all_set(129, 2));
  EXPECT_TRUE(map.all_set(50, 0));
  EXPECT_FALSE(map.all_set(250, 10));  // runs past the end
}

TEST(RegionMap, WordWiseAnswersMatchABitByBitModel) {
  std::mt19937_64 random(12345);
  for (uint64_t regions : {1ull, 63ull, 64ull, 65ull, 1000ull, 4097ull}) {
    RegionMap map(regions * 4096 - (regions > 1 ? 100 : 0), 4096);
    ASSERT_EQ(map.region_count(), regions);
    ReferenceMap model(regions);
    for (int step = 0; step < 200; ++step) {
      uint64_t first = random() % regions;
      uint64_t count = random() % 3 == 0 ? random() % regions : random() % 70;
      ASSERT_EQ(map.set(first, count), model.set(first, count));
      for (int probe = 0; probe < 20; ++probe) {
        uint64_t from = random() % (regions + 2);
        uint64_t max = random() % (regions + 5);
        ASSERT_EQ(map.test(from), from < regions && model.bits[from]);
        ASSERT_EQ(map.find_first_clear(from), model.find(from, false)) << from;
        ASSERT_EQ(map.find_first_set(from), model.find(from, true)) << from;
        ASSERT_EQ(map.run_length(from, max), model.run(from, max)) << from << " " << max;
      }
    }
  }
}

TEST(RegionMap, BeginCommitHandsOverTheTransactionAndStartsAnEmptyOne) {
  RegionMap map(1000 * uint64_t{k64K}, k64K);
  map.set(5, 1);
  map.set(700, 3);
  map.set(64, 64);
  EXPECT_EQ(map.transaction_regions(), 68u);
  RegionMap::Transaction t = map.begin_commit();
  EXPECT_EQ(t.regions, 68u);
  ASSERT_EQ(t.words.size(), 3u);
  EXPECT_EQ(t.words[0], (std::pair<uint64_t, uint64_t>{0, uint64_t{1} << 5}));
  EXPECT_EQ(t.words[1], (std::pair<uint64_t, uint64_t>{1, ~uint64_t{0}}));
  EXPECT_EQ(t.words[2], (std::pair<uint64_t, uint64_t>{10, uint64_t{7} << (700 - 640)}));
  EXPECT_EQ(map.transaction_regions(), 0u);

  // Set while the commit is in flight: belongs to the next transaction, even in a word the
  // committing one also touches.
  map.set(6, 1);
  map.set(900, 1);
  EXPECT_EQ(map.committed_word(0), 0u);
  map.finish_commit(std::move(t), true);
  EXPECT_EQ(map.committed_word(0), uint64_t{1} << 5);
  EXPECT_EQ(map.committed_word(1), ~uint64_t{0});
  EXPECT_EQ(map.committed_regions(), 68u);
  EXPECT_EQ(map.hydrated_regions(), 70u);

  RegionMap::Transaction next = map.begin_commit();
  EXPECT_EQ(next.regions, 2u);
  ASSERT_EQ(next.words.size(), 2u);
  EXPECT_EQ(next.words[0], (std::pair<uint64_t, uint64_t>{0, uint64_t{1} << 6}));
  EXPECT_EQ(next.words[1], (std::pair<uint64_t, uint64_t>{14, uint64_t{1} << (900 - 896)}));
  map.finish_commit(std::move(next), true);
  EXPECT_EQ(map.committed_regions(), 70u);
  EXPECT_TRUE(map.begin_commit().empty());
}

TEST(RegionMap, AFailedCommitMergesItsBitsBackIntoTheNextTransaction) {
  RegionMap map(1000 * uint64_t{k64K}, k64K);
  map.set(1, 2);
  RegionMap::Transaction t = map.begin_commit();
  map.set(3, 1);    // same word, after phase one
  map.set(500, 1);  // another word
  map.finish_commit(std::move(t), false);
  EXPECT_EQ(map.committed_regions(), 0u);
  EXPECT_EQ(map.committed_word(0), 0u);
  EXPECT_TRUE(map.test(1));  // still valid in memory (I1 holds: the data is there)
  EXPECT_EQ(map.transaction_regions(), 4u);
  RegionMap::Transaction retry = map.begin_commit();
  EXPECT_EQ(retry.regions, 4u);
  ASSERT_EQ(retry.words.size(), 2u);
  EXPECT_EQ(retry.words[0], (std::pair<uint64_t, uint64_t>{0, 0b1110}));
  EXPECT_EQ(retry.words[1].first, 500u / 64);
}

TEST(RegionMap, BeginCommitTwiceWithoutFinishingIsAProgrammingError) {
  RegionMap map(100 * uint64_t{k64K}, k64K);
  map.set(1, 1);
  RegionMap::Transaction t = map.begin_commit();
  EXPECT_THROW(map.begin_commit(), std::logic_error);
  map.finish_commit(std::move(t), true);
  EXPECT_NO_THROW(map.begin_commit());
}

TEST(RegionMap, LoadRestoresCommittedStateAndDropsTheTransaction) {
  RegionMap map(130 * uint64_t{k64K}, k64K);
  map.set(0, 1);
  std::vector<uint64_t> words = {0xf0, 0, 0x3};
  map.load(words);
  EXPECT_FALSE(map.test(0));
  EXPECT_TRUE(map.test(4));
  EXPECT_TRUE(map.test(129));
  EXPECT_EQ(map.hydrated_regions(), 6u);
  EXPECT_EQ(map.committed_regions(), 6u);
  EXPECT_EQ(map.committed_word(2), 0x3u);
  EXPECT_TRUE(map.begin_commit().empty());
}

TEST(RegionMap, LoadRejectsAWrongWordCountAndBitsPastTheEnd) {
  RegionMap map(130 * uint64_t{k64K}, k64K);
  std::vector<uint64_t> short_words = {0, 0};
  EXPECT_THROW(map.load(short_words), std::invalid_argument);
  std::vector<uint64_t> past_end = {0, 0, 0x4};  // region 130 does not exist
  EXPECT_THROW(map.load(past_end), std::invalid_argument);
}

TEST(RegionMap, WholeTerabyteRangeIsMarkedWordWise) {
  // 1 TiB at 64 KiB regions: 16 Mi regions, 256 Ki words (WRITE_ZEROES of a whole disk).
  RegionMap map(uint64_t{1} << 40, k64K);
  ASSERT_EQ(map.region_count(), uint64_t{1} << 24);
  EXPECT_EQ(map.set(1, map.region_count()), map.region_count() - 1);
  EXPECT_EQ(map.set(0, map.region_count()), 1u);
  EXPECT_TRUE(map.complete());
  RegionMap::Transaction t = map.begin_commit();
  EXPECT_EQ(t.regions, map.region_count());
  ASSERT_EQ(t.words.size(), map.word_count());
  for (auto [word, bits] : t.words) ASSERT_EQ(bits, ~uint64_t{0}) << word;
  map.finish_commit(std::move(t), true);
  EXPECT_EQ(map.committed_regions(), map.region_count());
}

TEST(RegionMap, LockFreeReadersSeeOnlyMonotonicGrowth) {
  RegionMap map(4096 * uint64_t{k64K}, k64K);
  std::atomic<bool> done{false};
  std::thread reader([&] {
    uint64_t last = 0;
    while (!done.load()) {
      uint64_t now = map.hydrated_regions();
      EXPECT_GE(now, last);
      last = now;
      uint64_t first_clear = map.find_first_clear(0);
      // Regions are set in order, so everything before the first clear one stays set.
      if (first_clear > 0) {
        EXPECT_TRUE(map.test(first_clear - 1));
      }
    }
  });
  for (uint64_t r = 0; r < map.region_count(); ++r) map.set(r, 1);
  done.store(true);
  reader.join();
  EXPECT_TRUE(map.complete());
}

}  // namespace
}  // namespace hydrate
