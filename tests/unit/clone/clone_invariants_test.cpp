// The invariants of DESIGN.md §3, each named in a test.
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>

#include "engine/async_event.h"
#include "engine/forwarding_block_device.h"
#include "tests/crash/crash_verifier.h"
#include "tests/crash/cut_points.h"
#include "tests/crash/workload_runner.h"
#include "tests/unit/clone/clone_fixture.h"

namespace hydrate::test {
namespace {

// Forwards to a device, holding writes or flushes at a gate the test opens, and appending
// every mutating call to a log shared with other devices so cross-device order is visible.
class GatedDevice : public ForwardingBlockDevice {
 public:
  GatedDevice(BlockDevice& target, std::string tag, std::vector<std::string>& journal,
              std::mutex& journal_mutex)
      : ForwardingBlockDevice(target),
        tag_(std::move(tag)),
        journal_(journal),
        journal_mutex_(journal_mutex) {}

  void close_gate(bool writes, bool flushes) {
    gate_ = std::make_shared<AsyncEvent>();
    gate_writes_ = writes;
    gate_flushes_ = flushes;
  }
  void open_gate() {
    if (gate_) gate_->set();
  }

  asio::awaitable<IoResult> write(uint64_t o, std::span<const std::byte> d, bool fua) override {
    if (gate_ && gate_writes_) co_await gate_->async_wait(asio::use_awaitable);
    IoResult r = co_await target().write(o, d, fua);
    note("write " + std::to_string(o) + " " + std::to_string(d.size()));
    co_return r;
  }
  // Background batches wait at the same gate and show in the journal as writes.
  asio::awaitable<IoResult> write_uncached(uint64_t o, std::span<const std::byte> d) override {
    return write(o, d, false);
  }
  asio::awaitable<IoResult> flush() override {
    note("flush-start");
    if (gate_ && gate_flushes_) co_await gate_->async_wait(asio::use_awaitable);
    IoResult r = co_await target().flush();
    note("flush");
    co_return r;
  }
  asio::awaitable<IoResult> write_zeroes(uint64_t o, uint64_t l, bool u) override {
    IoResult r = co_await target().write_zeroes(o, l, u);
    note("zero " + std::to_string(o) + " " + std::to_string(l));
    co_return r;
  }

 private:
  void note(std::string what) {
    std::lock_guard lock(journal_mutex_);
    journal_.push_back(tag_ + " " + what);
  }
  std::string tag_;
  std::vector<std::string>& journal_;
  std::mutex& journal_mutex_;
  std::shared_ptr<AsyncEvent> gate_;
  bool gate_writes_ = false;
  bool gate_flushes_ = false;
};

class Invariants : public CloneFixture {
 protected:
  Invariants()
      : gated_destination(destination, "dest", journal, journal_mutex),
        gated_metadata(metadata, "meta", journal, journal_mutex) {}
  // The volume uses the gated devices, which die before the base class closes it.
  ~Invariants() override {
    if (volume) close();
  }

  CloneParts gated_parts() {
    CloneParts p = parts();
    p.open_destination = [this](uint64_t, std::unique_ptr<BlockDevice>& out) {
      out = std::make_unique<SharedBlockDevice>(gated_destination);
      return IoResult::success();
    };
    p.open_metadata = [this](bool, uint64_t, std::unique_ptr<BlockDevice>& out) {
      out = std::make_unique<SharedBlockDevice>(gated_metadata);
      return IoResult::success();
    };
    return p;
  }
  void open_gated() {
    IoResult r =
        run_coroutine(io, CloneVolume::open(settings, gated_parts(), io.get_executor(), volume));
    ASSERT_TRUE(r.ok()) << r.message;
    std::lock_guard lock(journal_mutex);
    journal.clear();
  }
  // Starts a coroutine without waiting for it; `done` flips when it finishes.
  void spawn(asio::awaitable<IoResult> task, IoResult& result, bool& done) {
    asio::co_spawn(io, std::move(task), [&](std::exception_ptr, IoResult r) {
      result = r;
      done = true;
    });
  }

  std::vector<std::string> journal;
  std::mutex journal_mutex;
  GatedDevice gated_destination;
  GatedDevice gated_metadata;
};

TEST_F(Invariants, I1_BitIsSetOnlyAfterTheDestinationWriteCompleted) {
  open_gated();
  gated_destination.close_gate(/*writes=*/true, /*flushes=*/false);
  // The reply does not wait for the copy-on-read write-back...
  EXPECT_EQ(read(0, 4096), source_bytes(0, 4096));
  settle();
  // ...but the bit does.
  EXPECT_FALSE(volume->region_map().test(0));
  EXPECT_FALSE(volume->region_map().test(1));
  gated_destination.open_gate();
  run_until([&] { return volume->region_map().test(0) && volume->region_map().test(1); });
  EXPECT_EQ(dest_bytes(0, 2 * kRegion), source_bytes(0, 2 * kRegion));
}

TEST_F(Invariants, I1_FailedDestinationWriteLeavesTheBitClearAndTurnsReadOnly) {
  open_ok();
  destination.fail_once(MemoryBlockDevice::Operation::write, 1, EIO);
  EXPECT_EQ(read(0, 4096), source_bytes(0, 4096));  // the client still gets correct data
  settle();
  EXPECT_FALSE(volume->region_map().test(0));
  EXPECT_EQ(volume->status().state, CloneState::read_only);
  EXPECT_NE(volume->status().reason.find("destination write failed"), std::string::npos);
  EXPECT_EQ(write(10 * kRegion, std::vector<std::byte>(kRegion)).error, EIO);
  // Unhydrated reads keep working from the source, hydrated ones from the destination.
  EXPECT_EQ(read(30 * kRegion, 4096), source_bytes(30 * kRegion, 4096));
}

TEST_F(Invariants, I2_DestinationIsFlushedBeforeAnyMetadataIsWritten) {
  open_gated();
  ASSERT_TRUE(write(3 * kRegion, std::vector<std::byte>(kRegion, std::byte{3})).ok());
  ASSERT_TRUE(flush().ok());
  std::vector<std::string> j;
  {
    std::lock_guard lock(journal_mutex);
    j = journal;
  }
  auto pos = [&](const std::string& prefix) {
    for (size_t i = 0; i < j.size(); ++i)
      if (j[i].rfind(prefix, 0) == 0) return static_cast<int>(i);
    return -1;
  };
  int data = pos("dest write");
  int dest_flush = pos("dest flush-start");
  int dest_flushed = pos("dest flush");
  for (size_t i = 0; i < j.size(); ++i)
    if (j[i] == "dest flush") dest_flushed = static_cast<int>(i);
  int meta_write = pos("meta write");
  ASSERT_GE(data, 0);
  ASSERT_GE(meta_write, 0);
  EXPECT_LT(data, dest_flush);
  EXPECT_LT(dest_flushed, meta_write) << "metadata written before the destination flush";
  // Metadata: bitmap, flush, superblock, flush.
  std::vector<std::string> meta;
  for (auto& e : j)
    if (e.rfind("meta", 0) == 0 && e.find("flush-start") == std::string::npos) meta.push_back(e);
  ASSERT_EQ(meta.size(), 4u);
  EXPECT_EQ(meta[1], "meta flush");
  EXPECT_EQ(meta[3], "meta flush");
  EXPECT_EQ(meta[2].rfind("meta write 0 ", 0) == 0 || meta[2].rfind("meta write 4096 ", 0) == 0,
            true)
      << meta[2];
  EXPECT_TRUE(committed_map()->test(3));
}

TEST_F(Invariants, I2_BitsSetDuringACommitWaitForTheNextOne) {
  open_gated();
  ASSERT_TRUE(write(1 * kRegion, std::vector<std::byte>(kRegion, std::byte{1})).ok());
  gated_destination.close_gate(/*writes=*/false, /*flushes=*/true);
  IoResult first;
  bool first_done = false;
  spawn(volume->flush(), first, first_done);
  run_until([&] {
    std::lock_guard lock(journal_mutex);
    return !journal.empty() && journal.back() == "dest flush-start";
  });
  // The commit has swapped its dirty set and waits for the destination flush. A write that
  // completes now must not ride on that commit: its data is not covered by that flush.
  ASSERT_TRUE(write(7 * kRegion, std::vector<std::byte>(kRegion, std::byte{7})).ok());
  gated_destination.open_gate();
  run_until([&] { return first_done; });
  ASSERT_TRUE(first.ok()) << first.message;
  auto committed = committed_map();
  EXPECT_TRUE(committed->test(1));
  EXPECT_FALSE(committed->test(7));
  ASSERT_TRUE(flush().ok());
  EXPECT_TRUE(committed_map()->test(7));
}

TEST_F(Invariants, I3_CommittedBitsSurviveCloseAndReopen) {
  open_ok();
  ASSERT_TRUE(write(5 * kRegion, std::vector<std::byte>(kRegion, std::byte{5})).ok());
  read(9 * kRegion, 100);
  settle();
  ASSERT_TRUE(flush().ok());
  uint64_t hydrated = volume->region_map().hydrated_regions();
  ASSERT_TRUE(close().ok());
  open_ok();
  EXPECT_EQ(volume->region_map().hydrated_regions(), hydrated);
  EXPECT_TRUE(volume->region_map().test(5));
  uint64_t reads = source.reads();
  EXPECT_EQ(read(5 * kRegion, kRegion), std::vector<std::byte>(kRegion, std::byte{5}));
  EXPECT_EQ(read(9 * kRegion, kRegion), source_bytes(9 * kRegion, kRegion));
  EXPECT_EQ(source.reads(), reads);
}

TEST_F(Invariants, I4_FlushCoversWritesCompletedOnOtherConnections) {
  open_ok();
  // "Connection" A writes, then "connection" B flushes: B's flush must commit A's region.
  ASSERT_TRUE(write(6 * kRegion + 10, std::vector<std::byte>(100, std::byte{6})).ok());
  EXPECT_FALSE(committed_map()->test(6));
  ASSERT_TRUE(flush().ok());
  EXPECT_TRUE(committed_map()->test(6));
}

TEST_F(Invariants, I4_FuaWriteCommitsTheRegionsItHydrated) {
  open_ok();
  uint64_t flushes = destination.flushes();
  ASSERT_TRUE(write(11 * kRegion, std::vector<std::byte>(kRegion, std::byte{9}), true).ok());
  EXPECT_GT(destination.flushes(), flushes);
  EXPECT_TRUE(committed_map()->test(11));
}

TEST_F(Invariants, I4_ConcurrentFlushesAreFoldedIntoFewCommits) {
  open_ok();
  for (int i = 0; i < 8; ++i)
    ASSERT_TRUE(write(i * kRegion, std::vector<std::byte>(kRegion, std::byte{1})).ok());
  std::vector<IoResult> results(20);
  std::vector<char> done(20, 0);
  for (int i = 0; i < 20; ++i) {
    asio::co_spawn(io, volume->flush(), [&, i](std::exception_ptr, IoResult r) {
      results[i] = r;
      done[i] = 1;
    });
  }
  run_until([&] { return std::all_of(done.begin(), done.end(), [](char d) { return d; }); });
  for (auto& r : results) EXPECT_TRUE(r.ok()) << r.message;
  EXPECT_LE(volume->status().commits, 2u);
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(committed_map()->test(i));
}

TEST_F(Invariants, I5_SourceDataNeverLandsOnARegionAClientWrote) {
  open_ok();
  source.hold_reads(true);
  IoResult read_result, write_result;
  bool read_done = false, write_done = false;
  std::vector<std::byte> buffer(4096);
  spawn(volume->read(2 * kRegion, buffer, nullptr), read_result, read_done);
  run_until([&] { return volume->status().on_demand_fetches > 0; });
  std::vector<std::byte> mine(kRegion, std::byte{0xab});
  spawn(volume->write(2 * kRegion, mine, WriteFlags{}), write_result, write_done);
  settle();
  EXPECT_FALSE(write_done) << "the write must wait for the in-flight fetch of its region";
  source.hold_reads(false);
  run_until([&] { return read_done && write_done; });
  ASSERT_TRUE(read_result.ok());
  ASSERT_TRUE(write_result.ok());
  EXPECT_EQ(buffer, source_bytes(2 * kRegion, 4096));  // the read started first
  settle();
  EXPECT_EQ(read(2 * kRegion, kRegion), mine);
  EXPECT_EQ(dest_bytes(2 * kRegion, kRegion), mine);
}

TEST_F(Invariants, I5_ConcurrentReadsOfOneRegionFetchItOnce) {
  open_ok();
  source.set_latency(std::chrono::milliseconds(20));
  std::vector<std::vector<std::byte>> buffers(10, std::vector<std::byte>(4096));
  std::vector<IoResult> results(10);
  int done = 0;
  for (int i = 0; i < 10; ++i) {
    asio::co_spawn(io, volume->read(3 * kRegion + i * 4096, buffers[i], nullptr),
                   [&, i](std::exception_ptr, IoResult r) {
                     results[i] = r;
                     ++done;
                   });
  }
  run_until([&] { return done == 10; });
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(results[i].ok());
    EXPECT_EQ(buffers[i], source_bytes(3 * kRegion + i * 4096, 4096));
  }
  EXPECT_EQ(source.reads(), 1u);
}

TEST_F(Invariants, I6_SourceIsDiscardedOnlyForCommittedRegions) {
  settings.discard_source_after_commit = true;
  source.set_can_discard(true);
  open_ok();
  int checked = 0;
  source.on_discard([&](uint64_t offset, uint64_t length) {
    auto committed = committed_map();
    for (uint64_t r = offset / kRegion; r < (offset + length) / kRegion; ++r) {
      EXPECT_TRUE(committed->test(r)) << "region " << r << " discarded before its commit";
      ++checked;
    }
  });
  read(0, 4096);
  settle();
  EXPECT_TRUE(source.discard_log().empty());
  ASSERT_TRUE(flush().ok());
  EXPECT_EQ(source.discard_log().size(), 1u);
  EXPECT_EQ(checked, 2);
}

// Regression (found by the crash campaign's stable-reads check): with destination_zeroed, hole
// hydration writes nothing, trusting that an unhydrated destination region reads zero. After a
// crash that is no longer true: a client write may have reached the destination while its
// region's bit was never committed. Hydrating the source hole without zeroing then set the bit
// over the lost write's bytes, which read back although they were never acknowledged. An
// existing clone therefore ignores destination_zeroed. The trace: a whole-hole source,
// destination_zeroed, no copy-on-read, no background hydration; one client write of region 0
// lands on the destination, and the power is cut before any flush. After the restart region 0
// must read zero before and after the hole is hydrated.
TEST(InvariantsAcrossACrash, I1_ReopenedCloneZeroesSourceHolesDespiteDestinationZeroed) {
  using namespace crash;
  std::string error;
  auto workload = parse_workload(
      "seed=3 size=1048576 region=65536 window=65536 cor=0 dsac=0 dzero=1 passdown=1 hydrate=0 "
      "batch=65536 conns=1 dlat=0 slat=0 complete=0 skipflush=0 holes=0+1048576 "
      "ops=0W0+65536/p0/d5",
      error);
  ASSERT_TRUE(workload) << error;
  RunRecord run = run_workload(*workload);
  ASSERT_TRUE(verify_run(run).empty());
  // Cut right after the client's destination write completed: keep it, lose nothing else.
  uint64_t cut = 0;
  for (const Event& e : run.journal->events())
    if (e.actor == Actor::destination && e.action == Action::write && e.phase == Phase::complete) {
      cut = e.seq + 1;
      break;
    }
  ASSERT_GT(cut, 0u);
  CutVerdict verdict =
      verify_cut(run, CutCase{cut, LossPolicy::all(), LossPolicy::none(), "x"}, VerifyOptions{});
  for (const Violation& v : verdict.violations) ADD_FAILURE() << v.check << ": " << v.detail;
}

}  // namespace
}  // namespace hydrate::test
