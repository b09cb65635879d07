// The verifier's own rules: when a metadata refusal is legitimate, and that the run checks flag
// what they should. (That it catches a broken commit order is CrashCampaign's test.)
#include "tests/crash/crash_verifier.h"

#include <gtest/gtest.h>

#include "engine/log.h"
#include "tests/crash/workload_runner.h"

namespace hydrate::crash {
namespace {

struct QuietLogs {
  QuietLogs() : saved(log::level()) { log::set_level(log::Level::error); }
  ~QuietLogs() { log::set_level(saved); }
  log::Level saved;
};

Workload parse(const std::string& text) {
  std::string error;
  auto w = parse_workload(text, error);
  EXPECT_TRUE(w) << error;
  return w.value_or(Workload{});
}

// No requests, no hydration: the run is the creation of the metadata and a clean close.
const char* kIdle =
    "seed=9 size=1048576 region=65536 window=65536 cor=1 dsac=0 dzero=0 passdown=1 hydrate=0 "
    "batch=65536 conns=1 dlat=0 slat=0 complete=0 skipflush=0 ident=900 holes=- ops=-";

// The superblock write of the creation, torn, with nothing durable yet.
std::optional<CutVerdict> torn_creation(const RunRecord& run, uint64_t& cut) {
  cut = 0;
  for (const Event& e : run.journal->events())
    if (e.actor == Actor::metadata && e.action == Action::write && e.phase == Phase::issue) {
      cut = e.seq + 1;
      break;
    }
  if (cut == 0) return std::nullopt;
  for (uint64_t seed = 1; seed < 400; ++seed) {
    LossPolicy tear = LossPolicy::random_from(seed);
    tear.keep_percent = 100;
    tear.tear_percent = 100;
    CutVerdict verdict = verify_cut(run, CutCase{cut, LossPolicy::none(), tear, "x"}, {});
    if (verdict.refused_during_create || !verdict.violations.empty()) return verdict;
  }
  return std::nullopt;
}

TEST(CrashVerifier, ATornCreationIsRefusedWithAReasonAndThatIsLegitimate) {
  QuietLogs quiet;
  RunRecord run = run_workload(parse(kIdle));
  ASSERT_TRUE(verify_run(run).empty());
  ASSERT_NE(run.metadata_created, kNever);
  uint64_t cut = 0;
  auto verdict = torn_creation(run, cut);
  ASSERT_TRUE(verdict) << "no loss policy tore the superblock write";
  ASSERT_LT(cut, run.metadata_created);
  EXPECT_TRUE(verdict->violations.empty()) << verdict->violations.front().detail;
  EXPECT_TRUE(verdict->refused_during_create);
  EXPECT_NE(verdict->refusal.find("superblock"), std::string::npos) << verdict->refusal;
}

TEST(CrashVerifier, ARefusalOnceTheMetadataWasDurableIsAFailure) {
  QuietLogs quiet;
  RunRecord run = run_workload(parse(kIdle));
  run.metadata_created = 0;  // pretend a valid superblock was durable from the start
  uint64_t cut = 0;
  auto verdict = torn_creation(run, cut);
  ASSERT_TRUE(verdict);
  EXPECT_FALSE(verdict->refused_during_create);
  ASSERT_FALSE(verdict->violations.empty());
  EXPECT_EQ(verdict->violations.front().check, checks::kMetadataLoad);
}

TEST(CrashVerifier, EveryCutOfACorrectRunPasses) {
  QuietLogs quiet;
  RunRecord run = run_workload(parse(
      "seed=4 size=524288 region=16384 window=32768 cor=1 dsac=1 dzero=0 passdown=1 hydrate=1 "
      "batch=32768 conns=2 dlat=2 slat=2 complete=1 skipflush=0 holes=65536+32768 "
      "ops=0W1000+20000f/p1/d7,0F/p0,1W16384+16384/p0/d8,1Z40000+3000/p2,0R0+65536/p0,1F/p0"));
  ASSERT_TRUE(verify_run(run).empty()) << verify_run(run).front().detail;
  for (uint64_t cut = 0; cut <= run.end; cut += 7) {
    for (const LossPolicy& p :
         {LossPolicy::none(), LossPolicy::all(), LossPolicy::random_from(cut)}) {
      CutVerdict verdict = verify_cut(run, CutCase{cut, p, p, "x"}, VerifyOptions{false});
      ASSERT_TRUE(verdict.violations.empty())
          << "cut " << cut << " " << to_string(p) << ": " << verdict.violations.front().detail;
    }
  }
}

TEST(CrashVerifier, AReadThatMissedACompletedWriteIsFlagged) {
  QuietLogs quiet;
  RunRecord run = run_workload(parse(
      "seed=5 size=262144 region=16384 window=16384 cor=1 dsac=0 dzero=0 passdown=1 hydrate=0 "
      "batch=16384 conns=1 dlat=0 slat=0 complete=0 skipflush=0 holes=- "
      "ops=0W0+4096/p0/d11,0R0+4096/p0"));
  ASSERT_TRUE(verify_run(run).empty());
  ASSERT_EQ(run.reads.size(), 1u);
  // Make the recorded read look as if it had returned the source instead of the write.
  std::copy_n(run.source->begin(), 4096, run.reads[0].data.begin());
  auto violations = verify_run(run);
  ASSERT_FALSE(violations.empty());
  EXPECT_EQ(violations.front().check, checks::kReadDuringWorkload);
  EXPECT_NE(violations.front().detail.find("c0 read 0+4096"), std::string::npos)
      << violations.front().detail;
}

TEST(CrashVerifier, ProblemsDuringTheRunAreReported) {
  QuietLogs quiet;
  RunRecord run = run_workload(parse(kIdle));
  run.problems.push_back("something hung");
  auto violations = verify_run(run);
  ASSERT_EQ(violations.size(), 1u);
  EXPECT_EQ(violations[0].check, checks::kRun);
}

}  // namespace
}  // namespace hydrate::crash
