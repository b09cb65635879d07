// Progress that describes the copy (status `percent`, `data_*`, `eta_seconds`): holes the
// allocation scan hydrates without moving data are not progress, the ETA is data still to
// fetch at the recent data rate, and data done survives a restart. Rates run on a fake clock.
#include "engine/clone/copy_progress.h"
#include "engine/clone/rate_estimator.h"
#include "tests/unit/clone/clone_fixture.h"

namespace hydrate::test {
namespace {

using namespace std::chrono_literals;

// --- the computation on its own ------------------------------------------------------------

TEST(CopyProgress, UnscannedSourceCountsEverythingUnhydratedAsDataToFetch) {
  CopyProgress p = copy_progress({.size = 1000, .hydrated_bytes = 250});
  EXPECT_FALSE(p.data_bytes_exact) << "an upper bound until the allocation is scanned";
  EXPECT_EQ(p.data_bytes, 1000u);
  EXPECT_EQ(p.data_remaining_bytes, 750u);
  EXPECT_EQ(p.data_hydrated_bytes, 250u);
  EXPECT_DOUBLE_EQ(p.percent, 25.0);
  EXPECT_EQ(p.eta_seconds, -1) << "no data rate yet: unknown";
}

TEST(CopyProgress, HolesAreNeitherDataNorProgress) {
  // 600 of 1000 bytes are holes, all hydrated by the scan; 100 data bytes copied.
  CopyProgress p = copy_progress({.size = 1000,
                                  .hydrated_bytes = 700,
                                  .allocation = {.hole_bytes = 600, .scanned = true},
                                  .data_rate = 50});
  EXPECT_TRUE(p.data_bytes_exact);
  EXPECT_EQ(p.data_bytes, 400u);
  EXPECT_EQ(p.data_remaining_bytes, 300u);
  EXPECT_EQ(p.data_hydrated_bytes, 100u);
  EXPECT_DOUBLE_EQ(p.percent, 25.0);
  EXPECT_DOUBLE_EQ(p.eta_seconds, 6.0);
}

TEST(CopyProgress, SourceWithoutAllocationInformationIsAllData) {
  // What the scan records for a source without base:allocation: scanned, no holes.
  CopyProgress p = copy_progress(
      {.size = 1000, .hydrated_bytes = 100, .allocation = {.scanned = true}, .data_rate = 300});
  EXPECT_TRUE(p.data_bytes_exact);
  EXPECT_EQ(p.data_bytes, 1000u);
  EXPECT_EQ(p.data_remaining_bytes, 900u);
  EXPECT_DOUBLE_EQ(p.eta_seconds, 3.0);
}

TEST(CopyProgress, FullySparseSourceIsDoneOnceScanned) {
  // Not complete yet (the last commit is pending), but there is nothing to fetch.
  CopyProgress p = copy_progress(
      {.size = 1000, .hydrated_bytes = 1000, .allocation = {.hole_bytes = 1000, .scanned = true}});
  EXPECT_EQ(p.data_bytes, 0u);
  EXPECT_EQ(p.data_remaining_bytes, 0u);
  EXPECT_DOUBLE_EQ(p.percent, 100.0);
  EXPECT_EQ(p.eta_seconds, 0) << "nothing left: done, even without a rate";
}

TEST(CopyProgress, CompleteIsHundredPercentWithNothingLeft) {
  CopyProgress p = copy_progress({.size = 1000,
                                  .hydrated_bytes = 1000,
                                  .allocation = {.hole_bytes = 200, .scanned = true},
                                  .complete = true});
  EXPECT_EQ(p.data_remaining_bytes, 0u);
  EXPECT_EQ(p.data_hydrated_bytes, 800u);
  EXPECT_DOUBLE_EQ(p.percent, 100.0);
  EXPECT_EQ(p.eta_seconds, 0);
}

TEST(CopyProgress, HoleRecordedBeforeItsHydrationNeverShowsNegativeProgress) {
  // The scan records a hole just before hydrating it: for a moment it is both subtracted from
  // data and still unhydrated.
  CopyProgress p = copy_progress(
      {.size = 1000, .hydrated_bytes = 0, .allocation = {.hole_bytes = 600, .scanned = false}});
  EXPECT_EQ(p.data_bytes, 400u);
  EXPECT_EQ(p.data_remaining_bytes, 400u);
  EXPECT_EQ(p.data_hydrated_bytes, 0u);
  EXPECT_DOUBLE_EQ(p.percent, 0.0);
}

TEST(RateEstimator, FirstSampleStartsLaterOnesAverage) {
  RateEstimator r;
  const auto t0 = RateEstimator::Clock::time_point{} + 1h;
  EXPECT_EQ(r.update(t0, 0), 0);
  EXPECT_EQ(r.update(t0 + 100ms, 1000), 0) << "closer than kMinInterval: no new sample";
  EXPECT_DOUBLE_EQ(r.update(t0 + 1s, 1000), 1000.0);
  EXPECT_DOUBLE_EQ(r.update(t0 + 2s, 4000), 0.5 * 1000 + 0.5 * 3000);
  EXPECT_EQ(r.update(t0 + 3s, 10), 0) << "a counter that went backwards restarts the estimate";
}

// --- through a clone -----------------------------------------------------------------------

// 4 MiB in 64 KiB regions: holes at [0, 1 MiB) and [2 MiB, 3.5 MiB) (40 regions), data in
// [1 MiB, 2 MiB) and [3.5 MiB, 4 MiB) (24 regions).
class Progress : public CloneFixture {
 protected:
  static constexpr uint64_t kHoleBytes = (1u << 20) + (3u << 19);
  static constexpr uint64_t kDataBytes = kSize - kHoleBytes;
  static constexpr uint64_t kHoleRegions = kHoleBytes / kRegion;

  Progress() {
    settings.hydration.enabled = true;
    settings.hydration.batch_bytes = kRegion;
    settings.hydration.max_inflight_bytes = 2 * kRegion;
    source.add_zero_range(0, 1u << 20);
    source.add_zero_range(2u << 20, 3u << 19);
    now = std::chrono::steady_clock::time_point{} + 1h;
  }
  ~Progress() override { source.hold_reads(false); }

  void open_with_clock() {
    CloneParts p = parts();
    p.clock = [this] { return now; };
    IoResult r =
        run_coroutine(io, CloneVolume::open(settings, std::move(p), io.get_executor(), volume));
    ASSERT_TRUE(r.ok()) << r.message;
  }
  // With the source's reads held, the scan hydrates every hole while no data moves; then the
  // copy is paused and the batches it had started finish. Nothing is copied after this but
  // what the test asks for.
  void scan_then_pause() {
    source.hold_reads(true);
    const uint64_t read_before = source.bytes_read();
    open_with_clock();
    run_until([&] { return volume->status().allocation_scanned; });
    ASSERT_EQ(source.bytes_read(), read_before) << "no data moved while reads were held";
    ASSERT_TRUE(volume->region_map().all_set(0, 16) && volume->region_map().all_set(32, 24))
        << "the scan hydrated the holes";
    volume->pause();
    source.hold_reads(false);
    run_until([&] { return volume->status().inflight_bytes == 0; });
    settle();
  }
  std::chrono::steady_clock::time_point now;
};

TEST_F(Progress, PercentAndEtaCountDataOnlyAtTheDataRate) {
  // Opened paused, so the rates' first sample comes before the scan: the holes it hydrates
  // fall inside the rate window, as they do for a clone watched from its start.
  settings.hydration.enabled = false;
  open_with_clock();
  CloneStatus before = volume->status();
  EXPECT_EQ(before.hydrated_regions, 0u);
  source.hold_reads(true);
  volume->resume();
  run_until([&] { return volume->status().allocation_scanned; });
  volume->pause();
  source.hold_reads(false);
  run_until([&] { return volume->status().inflight_bytes == 0; });
  read(1u << 20, 4096);  // a client miss: data fetched on demand
  settle();

  now += 2s;
  CloneStatus s = volume->status();
  const uint64_t fetched = s.fetched_bytes;
  ASSERT_GT(fetched, 0u);
  ASSERT_LT(fetched, kDataBytes);
  EXPECT_TRUE(s.allocation_scanned);
  EXPECT_EQ(s.data_bytes, kDataBytes);
  EXPECT_EQ(s.data_hydrated_bytes, fetched);
  EXPECT_EQ(s.data_remaining_bytes, kDataBytes - fetched);
  EXPECT_EQ(s.hydrated_regions, kHoleRegions + fetched / kRegion);
  // The old computation said (40 + n) of 64 regions: over 60 % with nothing but holes done.
  EXPECT_NEAR(s.percent, 100.0 * static_cast<double>(fetched) / kDataBytes, 1e-9);
  EXPECT_NEAR(s.regions_percent, 100.0 * static_cast<double>(s.hydrated_regions) / 64, 1e-9);
  EXPECT_LT(s.percent, s.regions_percent);
  // Data rate: what came from the source over the 2 s; the region rate also counts the holes.
  EXPECT_DOUBLE_EQ(s.data_rate_bytes_per_second, static_cast<double>(fetched) / 2);
  EXPECT_DOUBLE_EQ(s.rate_bytes_per_second, static_cast<double>(kHoleBytes + fetched) / 2);
  EXPECT_NEAR(s.eta_seconds,
              static_cast<double>(kDataBytes - fetched) / (static_cast<double>(fetched) / 2), 1e-9);
}

TEST_F(Progress, ClientTrimIsDataDoneWithoutAFetch) {
  scan_then_pause();
  const uint64_t last = kSize / kRegion - 1;  // data, and past what the two batches reached
  ASSERT_FALSE(volume->region_map().test(last));
  CloneStatus a = volume->status();
  IoResult r = run_coroutine(io, volume->trim(last * kRegion, kRegion, WriteFlags{}));
  ASSERT_TRUE(r.ok()) << r.message;
  settle();
  CloneStatus b = volume->status();
  EXPECT_EQ(b.fetched_bytes, a.fetched_bytes) << "a trim moves no data";
  EXPECT_EQ(b.data_bytes, kDataBytes);
  EXPECT_EQ(b.data_remaining_bytes, a.data_remaining_bytes - kRegion);
  EXPECT_EQ(b.data_hydrated_bytes, a.data_hydrated_bytes + kRegion);
}

TEST_F(Progress, DataDoneSurvivesARestart) {
  scan_then_pause();
  read(1u << 20, 4096);
  settle();
  CloneStatus first = volume->status();
  ASSERT_GT(first.data_hydrated_bytes, 0u);
  ASSERT_TRUE(close().ok());

  // The new process has fetched nothing, but the map and a fresh scan know what is done.
  scan_then_pause();
  CloneStatus again = volume->status();
  EXPECT_EQ(again.fetched_bytes, again.data_hydrated_bytes - first.data_hydrated_bytes)
      << "only what the batches in flight at the pause fetched in this process";
  EXPECT_GE(again.data_hydrated_bytes, first.data_hydrated_bytes);
  EXPECT_EQ(again.data_bytes, kDataBytes);
  EXPECT_EQ(again.data_remaining_bytes, kDataBytes - again.data_hydrated_bytes);
  EXPECT_NEAR(again.percent, 100.0 * static_cast<double>(again.data_hydrated_bytes) / kDataBytes,
              1e-9);
}

TEST_F(Progress, FullySparseSourceHasNoDataAndIsDone) {
  source.add_zero_range(0, kSize);
  open_with_clock();
  run_until([&] { return volume->completed().is_set(); });
  CloneStatus s = volume->status();
  EXPECT_EQ(s.fetched_bytes, 0u);
  EXPECT_TRUE(s.allocation_scanned);
  EXPECT_EQ(s.data_bytes, 0u);
  EXPECT_EQ(s.data_remaining_bytes, 0u);
  EXPECT_DOUBLE_EQ(s.percent, 100.0);
  EXPECT_EQ(s.eta_seconds, 0);
}

TEST_F(Progress, CompleteCloneHasNothingLeftToFetch) {
  open_with_clock();
  run_until([&] { return volume->completed().is_set(); });
  CloneStatus s = volume->status();
  EXPECT_EQ(s.state, CloneState::complete);
  EXPECT_EQ(s.data_bytes, kDataBytes);
  EXPECT_EQ(s.data_hydrated_bytes, kDataBytes);
  EXPECT_EQ(s.data_remaining_bytes, 0u);
  EXPECT_DOUBLE_EQ(s.percent, 100.0);
  EXPECT_EQ(s.eta_seconds, 0);
}

}  // namespace
}  // namespace hydrate::test
