// Boot profiles in a clone (docs/profile-format.md): a prefetched clone hydrates the profile's
// regions first, in recorded order; a bad profile is refused with a warning naming the file and
// the clone still completes; the recording is the clients' first-touch order, found again by
// source identity in profile.dir.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>

#include "engine/log.h"
#include "engine/profile/access_profile_format.h"
#include "tests/unit/clone/clone_fixture.h"

namespace hydrate::test {
namespace {

namespace fs = std::filesystem;

class ProfileClone : public CloneFixture {
 protected:
  ProfileClone() {
    dir = fs::temp_directory_path() /
          ("hydrate-clone-profile-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir);
    // One region per batch, one batch in flight: the source's read log is the hydration order.
    settings.hydration.batch_bytes = kRegion;
    settings.hydration.max_inflight_bytes = kRegion;
    settings.commit_interval = std::chrono::milliseconds(50);
    settings.profile.record = false;
    log::set_sink([this](log::Level, std::string_view line) {
      std::lock_guard lock(log_mutex);
      logs.emplace_back(line);
    });
  }
  ~ProfileClone() override {
    if (volume) close();
    log::set_sink(nullptr);
    fs::remove_all(dir);
  }

  std::string profile_file(const std::string& name, std::vector<ProfileRun> runs,
                           uint64_t size = kSize, uint32_t region = kRegion) {
    AccessProfile p;
    p.source_size = size;
    p.region_size = region;
    p.source_identity = source.identity();
    p.runs = std::move(runs);
    std::string path = (dir / name).string();
    EXPECT_EQ(write_profile_file(path, p), "");
    return path;
  }
  void hydrate_fully() {
    settings.hydration.enabled = true;
    open_ok();
    run_until([&] { return volume->completed().is_set(); });
    EXPECT_EQ(destination.contents(), source.data());
  }
  std::string log_with(const std::string& needle) {
    std::lock_guard lock(log_mutex);
    for (const std::string& l : logs)
      if (l.find(needle) != std::string::npos) return l;
    return {};
  }

  fs::path dir;
  std::mutex log_mutex;
  std::vector<std::string> logs;
};

TEST_F(ProfileClone, PrefetchHydratesProfileRegionsFirstInRecordedOrder) {
  settings.profile.prefetch = {profile_file("boot.hprof", {{60, 3}, {7, 1}, {33, 1}})};
  hydrate_fully();
  std::vector<uint64_t> order = read_regions();
  ASSERT_GE(order.size(), 5u);
  EXPECT_EQ(std::vector<uint64_t>(order.begin(), order.begin() + 5),
            (std::vector<uint64_t>{60, 61, 62, 7, 33}))
      << "profile regions first, in recorded order";
  // Then the rest in the usual order, from the start of the map.
  EXPECT_EQ(order[5], 0u);
  EXPECT_EQ(order.size(), kSize / kRegion) << "nothing fetched twice";
  CloneStatus s = volume->status();
  EXPECT_EQ(s.profile.prefetch_regions, 5u);
  EXPECT_EQ(s.profile.prefetch_remaining, 0u);
}

TEST_F(ProfileClone, PrefetchBatchesContiguousProfileRegions) {
  settings.hydration.batch_bytes = 8 * kRegion;
  settings.hydration.max_inflight_bytes = 8 * kRegion;
  settings.profile.prefetch = {profile_file("boot.hprof", {{40, 2}, {42, 4}})};
  hydrate_fully();
  std::vector<ByteRange> reads = source.read_log();
  ASSERT_FALSE(reads.empty());
  EXPECT_EQ(reads[0].offset, 40 * kRegion);
  // Runs {40,2} and {42,4} touch: the first batch crosses from one into the other (as far as
  // the link-sized batch allows: 256 KiB = 4 regions before any rate is measured).
  EXPECT_GT(reads[0].length, 2 * kRegion) << "adjacent profile runs form one batch";
}

TEST_F(ProfileClone, HostileProfileIsRefusedNamingFileAndReasonAndTheCloneCompletes) {
  std::string bad = (dir / "hostile.hprof").string();
  std::ofstream(bad, std::ios::binary) << "HYDRPROF but not really a profile at all......";
  settings.profile.prefetch = {bad};
  hydrate_fully();
  std::string line = log_with("profile.refused");
  ASSERT_FALSE(line.empty()) << "no profile.refused warning";
  EXPECT_NE(line.find(bad), std::string::npos) << line;
  EXPECT_NE(line.find("reason="), std::string::npos) << line;
  EXPECT_EQ(volume->status().profile.prefetch_regions, 0u);
  EXPECT_EQ(read_regions().front(), 0u) << "the usual order without a profile";
}

TEST_F(ProfileClone, ProfileOfAnotherSourceSizeIsRefused) {
  std::string other = profile_file("other.hprof", {{60, 1}}, 2 * kSize);
  settings.profile.prefetch = {other};
  hydrate_fully();
  std::string line = log_with("profile.refused");
  EXPECT_NE(line.find(other), std::string::npos) << line;
  EXPECT_NE(line.find(std::to_string(2 * kSize)), std::string::npos) << line;
  EXPECT_EQ(read_regions().front(), 0u);
}

TEST_F(ProfileClone, ProfileOfAnotherRegionSizeIsRefused) {
  settings.profile.prefetch = {profile_file("other.hprof", {{60, 1}}, kSize, 4096)};
  hydrate_fully();
  EXPECT_NE(log_with("profile.refused").find("region size 4096"), std::string::npos);
  EXPECT_EQ(read_regions().front(), 0u);
}

TEST_F(ProfileClone, OneBadProfileDoesNotCostTheGoodOnes) {
  settings.profile.prefetch = {(dir / "absent.hprof").string(),
                               profile_file("good.hprof", {{50, 1}})};
  hydrate_fully();
  EXPECT_FALSE(log_with("profile.refused").empty());
  EXPECT_EQ(read_regions().front(), 50u);
}

TEST_F(ProfileClone, RecordingIsTheClientsTouchOrderNotThePrefetchOrder) {
  std::string recorded = (dir / "rec.hprof").string();
  settings.profile.record = true;
  settings.profile.file = recorded;
  settings.profile.prefetch = {profile_file("boot.hprof", {{60, 4}})};
  settings.hydration.enabled = true;
  source.set_latency(std::chrono::milliseconds(2));
  open_ok();
  read(10 * kRegion + 5, 100);
  read(2 * kRegion, kRegion);  // exactly region 2, though the fetch window is larger
  read(10 * kRegion, 10);      // seen already
  EXPECT_TRUE(volume->status().profile.recording);
  EXPECT_EQ(volume->status().profile.recorded_regions, 2u);
  EXPECT_EQ(volume->status().profile.file, recorded);
  run_until([&] { return volume->completed().is_set(); });
  ASSERT_TRUE(close().ok());
  AccessProfile p;
  ASSERT_EQ(load_profile(recorded, p), "");
  EXPECT_EQ(p.runs, (std::vector<ProfileRun>{{10, 1}, {2, 1}}));
  EXPECT_EQ(p.source_identity, source.identity());
}

TEST_F(ProfileClone, RecordingIsWrittenAtCommitWhileTheCloneRuns) {
  std::string recorded = (dir / "rec.hprof").string();
  settings.profile.record = true;
  settings.profile.file = recorded;
  open_ok();
  read(20 * kRegion, 100);  // copy-on-read sets bits, so a commit follows
  run_until([&] {
    AccessProfile p;
    return load_profile(recorded, p).empty() && p.regions() == 1;
  });
}

TEST_F(ProfileClone, RecordingStopsAtTheByteLimit) {
  settings.profile.record = true;
  settings.profile.file = (dir / "rec.hprof").string();
  settings.profile.record_limit_bytes = 2 * kRegion;
  open_ok();
  read(0, 4 * kRegion);
  CloneStatus s = volume->status();
  EXPECT_EQ(s.profile.recorded_regions, 2u);
  EXPECT_FALSE(s.profile.recording);
}

TEST_F(ProfileClone, ALaterCloneOfTheSameSourceFindsItsProfileInTheDirectory) {
  settings.profile.record = true;
  settings.profile.dir = dir.string();
  open_ok();
  read(45 * kRegion, 2 * kRegion);  // regions 45, 46
  ASSERT_TRUE(close().ok());
  std::string expected = (dir / profile_file_name(source.identity())).string();
  ASSERT_TRUE(fs::exists(expected));

  // A new clone of the same source: fresh destination and metadata, no prefetch list.
  for (MemoryBlockDevice* d : {&destination, &metadata}) {
    ASSERT_TRUE(run_coroutine(io, d->write_zeroes(0, d->size(), false)).ok());
    ASSERT_TRUE(run_coroutine(io, d->flush()).ok());
  }
  const size_t before = source.read_log().size();
  hydrate_fully();
  std::vector<uint64_t> order = read_regions();
  order.erase(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(before));
  ASSERT_GE(order.size(), 2u);
  EXPECT_EQ(order[0], 45u);
  EXPECT_EQ(order[1], 46u);
  std::string line = log_with("profile.prefetch");
  EXPECT_NE(line.find(expected), std::string::npos) << "the log names the profile used: " << line;
}

}  // namespace
}  // namespace hydrate::test
