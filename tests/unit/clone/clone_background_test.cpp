// Background hydration (DESIGN.md §5): completeness, hole skipping, batching, priority,
// pause/resume, rate and completion.
#include "tests/unit/clone/clone_fixture.h"

namespace hydrate::test {
namespace {

class Background : public CloneFixture {
 protected:
  Background() {
    settings.hydration.enabled = true;
    settings.hydration.batch_bytes = 512u << 10;
    settings.commit_interval = std::chrono::milliseconds(50);
  }
  void wait_complete() {
    run_until([&] { return volume->completed().is_set(); });
  }
};

TEST_F(Background, HydratesEverythingAndCompletes) {
  open_ok();
  wait_complete();
  CloneStatus s = volume->status();
  EXPECT_EQ(s.state, CloneState::complete);
  EXPECT_EQ(s.hydrated_regions, s.regions);
  EXPECT_EQ(destination.contents(), source.data());
  EXPECT_TRUE(source.closed()) << "the source is released at completion";
  auto committed = committed_map();
  EXPECT_EQ(committed->hydrated_regions(), committed->region_count());
  // Reads after completion never touch the source.
  uint64_t reads = source.reads();
  EXPECT_EQ(read(12345, 100000), source_bytes(12345, 100000));
  EXPECT_EQ(source.reads(), reads);
}

TEST_F(Background, SourceHolesAreHydratedWithoutMovingData) {
  source.add_zero_range(0, 1u << 20);
  source.add_zero_range(2u << 20, (1u << 20) + 4096);  // unaligned end: last region is data
  open_ok();
  wait_complete();
  EXPECT_EQ(destination.contents(), source.data());
  // Only data (plus the one partial region) came over the wire.
  uint64_t data_bytes = kSize - (1u << 20) - (1u << 20);
  EXPECT_EQ(source.bytes_read(), data_bytes);
  EXPECT_LE(source.block_status_calls(), 2u) << "the allocation map comes in a few calls";
}

TEST_F(Background, CopiesInLargeBatches) {
  open_ok();
  wait_complete();
  EXPECT_EQ(source.bytes_read(), kSize);
  EXPECT_LE(source.reads(), kSize / settings.hydration.batch_bytes + 1);
}

TEST_F(Background, KeepsSeveralBatchesInFlight) {
  settings.hydration.batch_bytes = 128u << 10;
  settings.hydration.max_inflight_bytes = 2u << 20;
  source.set_latency(std::chrono::milliseconds(5));
  open_ok();
  wait_complete();
  EXPECT_GE(source.max_concurrent_reads(), 2u);
}

TEST_F(Background, DestinationZeroedSkipsZeroingHoles) {
  settings.destination_zeroed = true;
  source.add_zero_range(1u << 20, 2u << 20);
  open_ok();
  wait_complete();
  for (auto& op : destination.log())
    EXPECT_NE(op.operation, MemoryBlockDevice::Operation::write_zeroes);
  EXPECT_EQ(destination.contents(), source.data());
}

TEST_F(Background, PauseStopsBackgroundWorkAndResumeFinishesIt) {
  settings.hydration.batch_bytes = 64u << 10;
  source.set_latency(std::chrono::milliseconds(2));
  open_ok();
  run_until([&] { return volume->region_map().hydrated_regions() > 2; });
  volume->pause();
  EXPECT_EQ(volume->status().state, CloneState::paused);
  settle();
  // Let in-flight batches land, then nothing more may move.
  for (int i = 0; i < 20; ++i) io.run_one_for(std::chrono::milliseconds(10));
  uint64_t frozen = source.reads();
  for (int i = 0; i < 30; ++i) io.run_one_for(std::chrono::milliseconds(10));
  EXPECT_EQ(source.reads(), frozen);
  // On-demand reads still work while paused.
  EXPECT_EQ(read(kSize - 4096, 4096), source_bytes(kSize - 4096, 4096));
  volume->resume();
  wait_complete();
  EXPECT_EQ(destination.contents(), source.data());
}

TEST_F(Background, SourceErrorsAreRetriedCountedAndNeverStored) {
  source.fail_next_reads(5);
  open_ok();
  wait_complete();
  EXPECT_EQ(destination.contents(), source.data());
  EXPECT_GE(volume->status().hydration_errors, 5u);
}

TEST_F(Background, OnDemandReadsAreServedWhileBackgroundRuns) {
  settings.hydration.batch_bytes = 64u << 10;
  source.set_latency(std::chrono::milliseconds(2));
  open_ok();
  for (uint64_t off = kSize - 64 * 4096; off < kSize; off += 64 * 4096 / 8)
    EXPECT_EQ(read(off, 4096), source_bytes(off, 4096));
  wait_complete();
  EXPECT_EQ(destination.contents(), source.data());
}

TEST_F(Background, ClientWritesDuringHydrationWinOverSourceData) {
  source.set_latency(std::chrono::milliseconds(1));
  open_ok();
  std::vector<std::byte> mine = random_bytes(3 * kRegion + 777, 99);
  uint64_t at = 20 * kRegion + 123;
  ASSERT_TRUE(write(at, mine).ok());
  wait_complete();
  auto expect = source.data();
  std::copy(mine.begin(), mine.end(), expect.begin() + at);
  EXPECT_EQ(destination.contents(), expect);
}

}  // namespace
}  // namespace hydrate::test

namespace hydrate::test {
namespace {

class RateLimited : public CloneFixture {};

// The cap holds even though batch completions keep waking the hydrator. Only an upper bound on
// progress is checked, so a slow machine cannot make it fail.
TEST_F(RateLimited, BackgroundCopyStaysUnderTheRate) {
  settings.hydration.enabled = true;
  settings.hydration.batch_bytes = 64u << 10;
  settings.hydration.rate_bytes_per_second = 512u << 10;
  settings.commit_interval = std::chrono::milliseconds(50);
  open_ok();
  auto start = std::chrono::steady_clock::now();
  run_until([&] { return std::chrono::steady_clock::now() - start > std::chrono::seconds(1); });
  double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // rate × elapsed, plus one second of burst the bucket may hold, plus one batch in flight.
  double allowed = (512 << 10) * (elapsed + 1.0) + (64 << 10);
  EXPECT_LE(static_cast<double>(source.bytes_read()), allowed)
      << "hydrated " << source.bytes_read() << " bytes in " << elapsed << " s at 512 KiB/s";
  EXPECT_GT(source.bytes_read(), 0u);
}

}  // namespace
}  // namespace hydrate::test
