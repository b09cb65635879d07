// AccessRecorder: first-touch order, and the byte and time limits (with an injected clock).
#include "engine/profile/access_recorder.h"

#include <gtest/gtest.h>

#include <thread>

namespace hydrate {
namespace {

constexpr uint32_t kRegion = 64u << 10;
constexpr uint64_t kSize = 100ull * kRegion;

struct FakeClock {
  std::chrono::steady_clock::time_point now{};
  AccessRecorder::Clock clock() {
    return [this] { return now; };
  }
};

TEST(AccessRecorder, RecordsFirstTouchOrderOnce) {
  FakeClock c;
  AccessRecorder rec(kSize, kRegion, "id", {}, c.clock());
  rec.note(50, 52);
  rec.note(10, 11);
  rec.note(51, 53);  // 51 already seen: only 52 is new
  rec.note(11, 12);
  AccessProfile p = rec.snapshot();
  // 52 was first touched after 10, so it starts its own run; 11 follows 10 on the device but
  // not in time (52 came between), so it is a run of its own too.
  std::vector<ProfileRun> expected = {{50, 2}, {10, 1}, {52, 1}, {11, 1}};
  EXPECT_EQ(p.runs, expected);
  EXPECT_EQ(rec.recorded_regions(), 5u);
  EXPECT_EQ(p.source_size, kSize);
  EXPECT_EQ(p.region_size, kRegion);
  EXPECT_EQ(p.source_identity, "id");
}

TEST(AccessRecorder, SequentialTouchesCoalesceIntoOneRun) {
  AccessRecorder rec(kSize, kRegion, "id", {});
  for (uint64_t r = 20; r < 30; ++r) rec.note(r, r + 1);
  EXPECT_EQ(rec.snapshot().runs, (std::vector<ProfileRun>{{20, 10}}));
}

TEST(AccessRecorder, StopsAtTheByteLimit) {
  AccessRecorder rec(kSize, kRegion, "id", {.bytes = 3ull * kRegion});
  rec.note(0, 2);
  EXPECT_TRUE(rec.recording());
  rec.note(40, 45);
  EXPECT_FALSE(rec.recording());
  EXPECT_EQ(rec.recorded_regions(), 3u);
  rec.note(60, 61);
  EXPECT_EQ(rec.snapshot().runs, (std::vector<ProfileRun>{{0, 2}, {40, 1}}));
}

TEST(AccessRecorder, StopsAtTheTimeLimit) {
  FakeClock c;
  AccessRecorder rec(kSize, kRegion, "id", {.time = std::chrono::minutes(10)}, c.clock());
  rec.note(5, 6);
  c.now += std::chrono::minutes(9);
  rec.note(6, 7);
  EXPECT_TRUE(rec.recording());
  c.now += std::chrono::minutes(1);
  rec.note(7, 8);
  EXPECT_FALSE(rec.recording());
  EXPECT_EQ(rec.snapshot().runs, (std::vector<ProfileRun>{{5, 2}}));
}

TEST(AccessRecorder, VersionChangesOnlyWhenSomethingNewIsRecorded) {
  AccessRecorder rec(kSize, kRegion, "id", {});
  rec.note(1, 2);
  uint64_t v = rec.version();
  rec.note(1, 2);
  EXPECT_EQ(rec.version(), v);
  rec.note(2, 3);
  EXPECT_NE(rec.version(), v);
}

TEST(AccessRecorder, TouchesBeyondTheSourceAreClipped) {
  AccessRecorder rec(kSize, kRegion, "id", {});
  rec.note(98, 200);
  EXPECT_EQ(rec.snapshot().runs, (std::vector<ProfileRun>{{98, 2}}));
}

TEST(AccessRecorder, ConcurrentNotesRecordEachRegionOnce) {
  AccessRecorder rec(kSize, kRegion, "id", {});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (uint64_t r = 0; r < 100; ++r) rec.note(r, r + 1);
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(rec.recorded_regions(), 100u);
  EXPECT_EQ(rec.snapshot().regions(), 100u);
}

}  // namespace
}  // namespace hydrate
