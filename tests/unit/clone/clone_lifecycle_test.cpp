// Opening, closing, restarting, refusing the wrong source (I7), source outages and metadata
// failures.
#include "tests/unit/clone/clone_fixture.h"

namespace hydrate::test {
namespace {

using Lifecycle = CloneFixture;

TEST_F(Lifecycle, RestartResumesFromTheMetadata) {
  settings.hydration.enabled = true;
  settings.hydration.batch_bytes = 64u << 10;
  settings.commit_interval = std::chrono::milliseconds(20);
  source.set_latency(std::chrono::milliseconds(2));
  open_ok();
  run_until([&] { return volume->status().committed_regions >= 10; });
  ASSERT_TRUE(close().ok());
  uint64_t committed = committed_map()->hydrated_regions();
  ASSERT_GE(committed, 10u);
  uint64_t bytes_before = source.bytes_read();
  open_ok();
  EXPECT_GE(volume->region_map().hydrated_regions(), committed);
  run_until([&] { return volume->completed().is_set(); });
  EXPECT_EQ(destination.contents(), source.data());
  // Progress was kept: the second run did not copy everything again.
  EXPECT_LE(source.bytes_read() - bytes_before, kSize - committed * kRegion);
}

// Regression (found by the crash campaign): the committer's periodic loop is a detached
// coroutine that, woken by the timer cancellation close() posts, reads the Committer's members.
// close() used not to wait for it, so destroying the volume as soon as close() returned (as every
// owner does) freed the Committer first and the loop resumed inside freed memory (ASan:
// heap-use-after-free in Committer::periodic; in plain builds, sporadic heap corruption).
TEST_F(Lifecycle, VolumeMayBeDestroyedAsSoonAsCloseReturned) {
  open_ok();
  ASSERT_TRUE(run_coroutine(io, volume->close()).ok());
  volume.reset();
  io.poll();  // runs whatever close() left queued, against the freed volume if it left any
}

TEST_F(Lifecycle, I7_AnotherSourceIsRefusedWithBothNames) {
  open_ok();
  ASSERT_TRUE(close().ok());
  FakeSource other(random_bytes(kSize, 1), "fake:other");
  CloneParts p = parts();
  p.source = std::make_unique<SharedSource>(other);
  IoResult r =
      run_coroutine(io, CloneVolume::open(settings, std::move(p), io.get_executor(), volume));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message.find("fake:source"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("fake:other"), std::string::npos) << r.message;
}

TEST_F(Lifecycle, I7_AnotherRegionSizeIsRefused) {
  open_ok();
  ASSERT_TRUE(close().ok());
  settings.region_size = 128u << 10;
  IoResult r = open();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message.find("region size differs"), std::string::npos) << r.message;
  // Not giving a region size adopts the recorded one.
  settings.region_size = 0;
  open_ok();
  EXPECT_EQ(volume->region_map().region_size(), kRegion);
}

TEST_F(Lifecycle, I7_SourceThatChangedSizeFailsTheCloneWhenItConnects) {
  open_ok();
  ASSERT_TRUE(close().ok());
  FakeSource bigger(random_bytes(2 * kSize, 42), "fake:source");
  CloneParts p = parts();
  p.source = std::make_unique<SharedSource>(bigger);
  ASSERT_TRUE(
      run_coroutine(io, CloneVolume::open(settings, std::move(p), io.get_executor(), volume)).ok());
  run_until([&] { return volume->status().state == CloneState::failed; });
  EXPECT_NE(volume->status().reason.find("source size differs"), std::string::npos);
  IoResult r;
  read(0, 4096, &r);
  EXPECT_FALSE(r.ok());
  // The volume forwards to `bigger`, which dies with this scope: close before it does.
  close();
}

TEST_F(Lifecycle, ExistingCloneServesHydratedDataWhileTheSourceIsDown) {
  open_ok();
  read(0, 4096);
  settle();
  ASSERT_TRUE(flush().ok());
  ASSERT_TRUE(close().ok());
  source.set_available(false);
  settings.source_timeout = std::chrono::milliseconds(300);
  open_ok();
  EXPECT_EQ(volume->status().state, CloneState::starting);
  EXPECT_EQ(read(0, 4096), source_bytes(0, 4096));
  IoResult r;
  read(20 * kRegion, 4096, &r);
  EXPECT_EQ(r.error, EIO) << "an unhydrated read fails after source_timeout, never wrong data";
  source.set_available(true);
  run_until([&] { return volume->status().state != CloneState::starting; });
  EXPECT_EQ(read(20 * kRegion, 4096), source_bytes(20 * kRegion, 4096));
}

TEST_F(Lifecycle, NewCloneNeedsTheSource) {
  source.set_available(false);
  IoResult r = open();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message.find("source is unreachable"), std::string::npos) << r.message;
}

TEST_F(Lifecycle, CorruptMetadataIsRefusedNotReformatted) {
  open_ok();
  ASSERT_TRUE(close().ok());
  std::vector<std::byte> junk(64, std::byte{0x77});
  metadata.set_contents(0, junk);
  metadata.set_contents(4096, junk);
  IoResult r = open();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message.find("meta"), std::string::npos) << r.message;
  auto contents = metadata.contents();
  EXPECT_EQ(contents[0], std::byte{0x77}) << "refusing must not rewrite the metadata";
}

TEST_F(Lifecycle, MetadataWriteFailureSwitchesToReadOnly) {
  open_ok();
  ASSERT_TRUE(write(0, std::vector<std::byte>(kRegion, std::byte{1})).ok());
  metadata.fail_from(MemoryBlockDevice::Operation::write, 1, EIO);
  IoResult r = flush();
  EXPECT_EQ(r.error, EIO);
  CloneStatus s = volume->status();
  EXPECT_EQ(s.state, CloneState::read_only);
  EXPECT_NE(s.reason.find("metadata"), std::string::npos) << s.reason;
  EXPECT_EQ(write(kRegion, std::vector<std::byte>(kRegion)).error, EIO);
  EXPECT_EQ(flush().error, EIO);
  EXPECT_EQ(read(0, kRegion), std::vector<std::byte>(kRegion, std::byte{1}));
}

TEST_F(Lifecycle, StatusReportsProgress) {
  open_ok();
  read(0, 4096);
  settle();
  CloneStatus s = volume->status();
  EXPECT_EQ(s.name, "c");
  EXPECT_EQ(s.size, kSize);
  EXPECT_EQ(s.regions, kSize / kRegion);
  EXPECT_EQ(s.hydrated_regions, 2u);
  EXPECT_EQ(s.fetched_bytes, 2 * kRegion);
  EXPECT_EQ(s.on_demand_fetches, 1u);
  EXPECT_NEAR(s.percent, 100.0 * 2 / 64, 1e-9);
}

}  // namespace
}  // namespace hydrate::test
