// The crash simulator's own contract: what a flush covers, what survives a power cut, how
// writes tear, and that nothing after a cut reaches the post-crash image.
#include "tests/crash/volatile_cache_device.h"

#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include "tests/crash/settle.h"
#include "tests/support/run_coroutine.h"

namespace hydrate::crash {
namespace {

using test::run_coroutine;

std::vector<std::byte> filled(size_t n, uint8_t value) {
  return std::vector<std::byte>(n, std::byte{value});
}

std::vector<std::byte> slice(const std::vector<std::byte>& v, size_t offset, size_t length) {
  return {v.begin() + static_cast<ptrdiff_t>(offset),
          v.begin() + static_cast<ptrdiff_t>(offset + length)};
}

class VolatileCache : public ::testing::Test {
 protected:
  VolatileCacheDevice make(unsigned latency = 0, bool fixed = false, uint8_t initial = 0xee,
                           Actor actor = Actor::destination) {
    return VolatileCacheDevice(
        filled(kSize, initial), journal,
        {actor == Actor::destination ? "dest" : "meta", actor, latency, 7, fixed});
  }
  IoResult write(VolatileCacheDevice& d, uint64_t offset, uint8_t value, size_t length,
                 bool fua = false) {
    auto data = filled(length, value);
    return run_coroutine(io, d.write(offset, data, fua));
  }
  IoResult flush(VolatileCacheDevice& d) { return run_coroutine(io, d.flush()); }
  // Starts an operation without waiting for it.
  void spawn(asio::awaitable<IoResult> op, IoResult& result, bool& done) {
    asio::co_spawn(io, std::move(op), [&](std::exception_ptr, IoResult r) {
      result = r;
      done = true;
    });
  }

  static constexpr size_t kSize = 64 * 1024;
  asio::io_context io;
  EventJournal journal;
};

TEST_F(VolatileCache, ReadsSeeCompletedWritesAtOnce) {
  auto d = make();
  ASSERT_TRUE(write(d, 4096, 0x11, 4096).ok());
  std::vector<std::byte> out(4096);
  ASSERT_TRUE(run_coroutine(io, d.read(4096, out)).ok());
  EXPECT_EQ(out, filled(4096, 0x11));
}

TEST_F(VolatileCache, UnflushedWritesMayOrMayNotSurvive) {
  auto d = make();
  ASSERT_TRUE(write(d, 0, 0x11, 4096).ok());
  const uint64_t cut = journal.now();
  EXPECT_EQ(slice(d.image_after_crash(cut, LossPolicy::none()), 0, 4096), filled(4096, 0xee));
  EXPECT_EQ(slice(d.image_after_crash(cut, LossPolicy::all()), 0, 4096), filled(4096, 0x11));
}

TEST_F(VolatileCache, FlushMakesWritesCompletedBeforeItDurable) {
  auto d = make();
  ASSERT_TRUE(write(d, 0, 0x11, 4096).ok());
  ASSERT_TRUE(flush(d).ok());
  ASSERT_TRUE(write(d, 8192, 0x22, 4096).ok());
  auto image = d.durable_image(journal.now());
  EXPECT_EQ(slice(image, 0, 4096), filled(4096, 0x11));
  EXPECT_EQ(slice(image, 8192, 4096), filled(4096, 0xee)) << "written after the flush";
}

TEST_F(VolatileCache, AWriteStillInFlightWhenAFlushIsIssuedIsNotCoveredByIt) {
  auto d = make(/*latency=*/3, /*fixed=*/true);
  IoResult w, f;
  bool w_done = false, f_done = false;
  const auto data = filled(4096, 0x11);  // outlives the spawned write
  spawn(d.write(0, data, false), w, w_done);
  spawn(d.flush(), f, f_done);
  ASSERT_TRUE(run_until(
      io, [&] { return w_done && f_done; }, std::chrono::seconds(5)));
  ASSERT_TRUE(w.ok() && f.ok());
  auto records = d.records();
  ASSERT_EQ(records.size(), 2u);
  ASSERT_LT(records[1].issued, records[0].completed) << "the flush was issued mid-write";
  EXPECT_FALSE(d.durable_at(0, journal.now()));
  EXPECT_EQ(slice(d.durable_image(journal.now()), 0, 4096), filled(4096, 0xee));
  ASSERT_TRUE(flush(d).ok());
  EXPECT_TRUE(d.durable_at(0, journal.now()));
}

TEST_F(VolatileCache, AFlushCountsOnlyOnceItCompletedBeforeTheCut) {
  auto d = make(/*latency=*/2, /*fixed=*/true);
  ASSERT_TRUE(write(d, 0, 0x11, 4096).ok());
  ASSERT_TRUE(flush(d).ok());
  auto records = d.records();
  const uint64_t flush_issued = records[1].issued, flush_completed = records[1].completed;
  EXPECT_FALSE(d.durable_at(0, flush_issued + 1));
  EXPECT_FALSE(d.durable_at(0, flush_completed)) << "cut just before the flush completed";
  EXPECT_TRUE(d.durable_at(0, flush_completed + 1));
}

TEST_F(VolatileCache, FuaWritesAreDurableOnCompletion) {
  auto d = make();
  ASSERT_TRUE(write(d, 0, 0x11, 4096, /*fua=*/true).ok());
  ASSERT_TRUE(write(d, 4096, 0x22, 4096, /*fua=*/false).ok());
  auto image = d.durable_image(journal.now());
  EXPECT_EQ(slice(image, 0, 4096), filled(4096, 0x11));
  EXPECT_EQ(slice(image, 4096, 4096), filled(4096, 0xee));
}

TEST_F(VolatileCache, AWriteInFlightAtTheCutMayLandOrNot) {
  auto d = make(/*latency=*/4, /*fixed=*/true);
  IoResult w;
  bool done = false;
  const auto data = filled(4096, 0x11);
  spawn(d.write(0, data, false), w, done);
  ASSERT_TRUE(run_until(
      io, [&] { return !d.records().empty(); }, std::chrono::seconds(5)));
  const uint64_t cut = journal.now();  // issued, not completed
  ASSERT_TRUE(run_until(
      io, [&] { return done; }, std::chrono::seconds(5)));
  EXPECT_EQ(slice(d.image_after_crash(cut, LossPolicy::none()), 0, 4096), filled(4096, 0xee));
  EXPECT_EQ(slice(d.image_after_crash(cut, LossPolicy::all()), 0, 4096), filled(4096, 0x11));
}

TEST_F(VolatileCache, LaterWritesWinInCompletionOrder) {
  auto d = make();
  ASSERT_TRUE(write(d, 0, 0x11, 8192).ok());
  ASSERT_TRUE(write(d, 4096, 0x22, 8192).ok());
  ASSERT_TRUE(flush(d).ok());
  auto image = d.durable_image(journal.now());
  EXPECT_EQ(slice(image, 0, 4096), filled(4096, 0x11));
  EXPECT_EQ(slice(image, 4096, 8192), filled(8192, 0x22));
}

TEST_F(VolatileCache, WriteZeroesAndDiscardAreRecordedAsZeroes) {
  auto d = make();
  ASSERT_TRUE(run_coroutine(io, d.write_zeroes(0, 4096, true)).ok());
  ASSERT_TRUE(run_coroutine(io, d.discard(8192, 4096)).ok());
  ASSERT_TRUE(flush(d).ok());
  auto image = d.durable_image(journal.now());
  EXPECT_EQ(slice(image, 0, 4096), filled(4096, 0));
  EXPECT_EQ(slice(image, 4096, 4096), filled(4096, 0xee));
  EXPECT_EQ(slice(image, 8192, 4096), filled(4096, 0));
}

// Every sector of a torn write is all old or all new; across seeds every mix shows up.
TEST_F(VolatileCache, TornWritesKeepWholeSectors) {
  auto d = make();
  const uint64_t offset = 700, length = 3000;  // unaligned: partial first and last sectors
  ASSERT_TRUE(write(d, offset, 0x11, length).ok());
  const uint64_t cut = journal.now();
  int torn = 0, whole = 0, lost = 0;
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    LossPolicy policy = LossPolicy::random_from(seed);
    policy.keep_percent = 100;
    policy.tear_percent = 50;
    auto image = d.image_after_crash(cut, policy);
    int landed = 0, sectors = 0;
    for (uint64_t s = offset / kSectorSize * kSectorSize; s < offset + length; s += kSectorSize) {
      const uint64_t lo = std::max(s, offset), hi = std::min(s + kSectorSize, offset + length);
      auto piece = slice(image, lo, hi - lo);
      const bool is_new = piece == filled(hi - lo, 0x11);
      ASSERT_TRUE(is_new || piece == filled(hi - lo, 0xee))
          << "seed " << seed << ": sector at " << s << " holds a mix of old and new bytes";
      landed += is_new;
      ++sectors;
    }
    EXPECT_EQ(slice(image, 0, offset), filled(offset, 0xee)) << "bytes outside the write changed";
    if (landed == sectors)
      ++whole;
    else if (landed == 0)
      ++lost;
    else
      ++torn;
  }
  EXPECT_GT(torn, 0);
  EXPECT_GT(whole, 0);
  EXPECT_GT(lost, 0);
}

TEST_F(VolatileCache, RandomLossIsDeterministicInItsSeed) {
  auto d = make();
  for (int i = 0; i < 16; ++i) ASSERT_TRUE(write(d, i * 4096, uint8_t(i + 1), 4096).ok());
  const uint64_t cut = journal.now();
  EXPECT_EQ(d.image_after_crash(cut, LossPolicy::random_from(5)),
            d.image_after_crash(cut, LossPolicy::random_from(5)));
  bool differs = false;
  for (uint64_t seed = 6; seed < 20 && !differs; ++seed)
    differs = d.image_after_crash(cut, LossPolicy::random_from(5)) !=
              d.image_after_crash(cut, LossPolicy::random_from(seed));
  EXPECT_TRUE(differs);
}

TEST_F(VolatileCache, DevicesLoseWritesIndependently) {
  auto destination = make(0, false, 0xee, Actor::destination);
  auto metadata = make(0, false, 0xee, Actor::metadata);
  ASSERT_TRUE(write(destination, 0, 0x11, 4096).ok());
  ASSERT_TRUE(write(metadata, 0, 0x22, 4096).ok());
  ASSERT_TRUE(flush(metadata).ok());  // flushing one device says nothing about the other
  const uint64_t cut = journal.now();
  EXPECT_EQ(slice(destination.durable_image(cut), 0, 4096), filled(4096, 0xee));
  EXPECT_EQ(slice(metadata.durable_image(cut), 0, 4096), filled(4096, 0x22));
}

TEST_F(VolatileCache, APowerCutFailsEverythingAfterItAndInFlight) {
  auto d = make(/*latency=*/3, /*fixed=*/true);
  ASSERT_TRUE(write(d, 0, 0x11, 4096).ok());
  ASSERT_TRUE(flush(d).ok());
  IoResult w;
  bool done = false;
  const auto data = filled(4096, 0x22);
  spawn(d.write(4096, data, false), w, done);
  ASSERT_TRUE(run_until(
      io, [&] { return d.records().size() == 3; }, std::chrono::seconds(5)));
  d.power_cut();
  const uint64_t cut = journal.now();
  const auto before = d.image_after_crash(cut, LossPolicy::random_from(3));
  ASSERT_TRUE(run_until(
      io, [&] { return done; }, std::chrono::seconds(5)));
  EXPECT_EQ(w.error, EIO);
  EXPECT_NE(w.message.find("power cut"), std::string::npos) << w.message;
  IoResult later = write(d, 8192, 0x33, 4096);
  EXPECT_EQ(later.error, EIO);
  EXPECT_EQ(flush(d).error, EIO);
  std::vector<std::byte> out(16);
  EXPECT_EQ(run_coroutine(io, d.read(0, out)).error, EIO);
  // Nothing the engine tried after the cut changes any post-crash image of it.
  for (uint64_t seed : {3, 4, 5}) {
    EXPECT_EQ(d.image_after_crash(cut, LossPolicy::random_from(seed)),
              d.image_after_crash(journal.now(), LossPolicy::random_from(seed)));
  }
  EXPECT_EQ(before, d.image_after_crash(cut, LossPolicy::random_from(3)));
  EXPECT_EQ(slice(d.durable_image(journal.now()), 0, 4096), filled(4096, 0x11));
}

TEST_F(VolatileCache, OutOfRangeRequestsFailNamingTheDevice) {
  auto d = make();
  IoResult r = write(d, kSize - 100, 0x11, 200);
  EXPECT_EQ(r.error, EINVAL);
  EXPECT_NE(r.message.find("dest"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find(std::to_string(kSize - 100)), std::string::npos) << r.message;
  EXPECT_TRUE(d.records().empty());
}

TEST_F(VolatileCache, EveryMutationIsStampedInTheSharedJournal) {
  auto d = make();
  ASSERT_TRUE(write(d, 512, 0x11, 1024, true).ok());
  ASSERT_TRUE(flush(d).ok());
  auto events = journal.events();
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].action, Action::write);
  EXPECT_EQ(events[0].phase, Phase::issue);
  EXPECT_EQ(events[0].offset, 512u);
  EXPECT_TRUE(events[0].fua);
  EXPECT_EQ(events[1].phase, Phase::complete);
  EXPECT_EQ(events[2].action, Action::flush);
  EXPECT_EQ(describe(events[1]), "@1 destination write 512+1024 fua completed");
}

}  // namespace
}  // namespace hydrate::crash
