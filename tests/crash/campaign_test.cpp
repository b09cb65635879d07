// The crash campaign (issue 4, deliverable 2): randomized workloads with power cuts at random
// points and at every step of the commit protocol, each checked against a fresh engine.
//
//   CrashCampaign.*     the CI-sized campaign (a few hundred cuts, well under two minutes)
//   CrashReplay.Seed    HYDRATE_CRASH_SEED=N [HYDRATE_CRASH_CAMPAIGN='knobs'] re-runs one seed
//   CrashReplay.Trace   HYDRATE_CRASH_REPLAY='workload' [HYDRATE_CRASH_CUT='cut'] replays a trace
//   CrashSoak.Run       HYDRATE_CRASH_SOAK=FIRST:WORKLOADS the long soak (bench/crash/soak)
// The replay and soak tests skip themselves unless their variable is set.
#include "tests/crash/campaign.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>

#include "engine/log.h"
#include "tests/crash/cut_points.h"
#include "tests/crash/workload_runner.h"

namespace hydrate::crash {
namespace {

// Sanitizer builds run the same checks on fewer workloads: they are 5-20 times slower.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr uint64_t kWorkloadsPerShard = 10;
#else
constexpr uint64_t kWorkloadsPerShard = 40;
#endif

struct QuietLogs {
  QuietLogs() : saved(log::level()) { log::set_level(log::Level::error); }
  ~QuietLogs() { log::set_level(saved); }
  log::Level saved;
};

CampaignOptions ci_options(uint64_t first_seed, uint64_t workloads) {
  CampaignOptions options;
  options.first_seed = first_seed;
  options.workloads = workloads;
  options.protocol_cuts = 4;
  options.random_cuts = 2;
  options.shrink_budget = std::chrono::seconds(60);
  options.log = [](const std::string& text) { std::cout << text << std::flush; };
  return options;
}

void expect_clean(const CampaignReport& report) {
  std::cout << summary(report) << "\n";
  EXPECT_GT(report.cases, 0u);
  for (const CaseFailure& f : report.failures) ADD_FAILURE() << f.report;
}

// Four shards of consecutive seeds, so ctest -j runs them side by side.
TEST(CrashCampaign, RandomWorkloadsShard1) {
  QuietLogs quiet;
  expect_clean(run_campaign(ci_options(1, kWorkloadsPerShard)));
}
TEST(CrashCampaign, RandomWorkloadsShard2) {
  QuietLogs quiet;
  expect_clean(run_campaign(ci_options(1001, kWorkloadsPerShard)));
}
TEST(CrashCampaign, RandomWorkloadsShard3) {
  QuietLogs quiet;
  expect_clean(run_campaign(ci_options(2001, kWorkloadsPerShard)));
}
TEST(CrashCampaign, RandomWorkloadsShard4) {
  QuietLogs quiet;
  expect_clean(run_campaign(ci_options(3001, kWorkloadsPerShard)));
}

// Every step of the commit protocol, not a sample: a cut before and after each metadata write
// and flush and each destination flush of a few whole runs.
TEST(CrashCampaign, EveryCommitProtocolStep) {
  QuietLogs quiet;
  CampaignOptions options = ci_options(9001, 2);
  options.every_protocol_cut = true;
  options.random_cuts = 0;
  options.generator.max_ops = 10;
  CampaignReport report = run_campaign(options);
  expect_clean(report);
  for (auto& [label, count] : report.cut_labels)
    std::cout << "  " << count << " x " << label << "\n";
  for (const char* step : {"after destination flush issued", "after destination flush completed",
                           "after metadata write issued", "after metadata write completed",
                           "after metadata flush issued", "after metadata flush completed"})
    EXPECT_GT(report.cut_labels[step], 0u) << "no cut " << step;
}

// The dm-clone bug (research/hydration.md §1.7): committing the map without flushing the
// destination first. The campaign must catch it within the CI budget, and the shrunk trace must
// fail with the bug and pass without it.
TEST(CrashCampaign, CatchesACommitThatSkipsTheDestinationFlush) {
  QuietLogs quiet;
  CampaignOptions options = ci_options(1, 200);
  options.generator.skip_destination_flush = true;
  options.stop_at_first_failure = true;
  options.max_cases = 300;
  options.shrink_budget = std::chrono::seconds(30);
  CampaignReport report = run_campaign(options);
  std::cout << summary(report) << "\n";
  ASSERT_FALSE(report.failures.empty())
      << "a commit without a destination flush went unnoticed for " << report.cases << " cases";
  const CaseFailure& failure = report.failures.front();
  std::cout << "broken commit order caught at case " << failure.case_number << " (seed "
            << failure.seed << ", check " << failure.minimal.violation.check << ")\n";
  const std::string& check = failure.minimal.violation.check;
  EXPECT_TRUE(check == checks::kBitWithoutData || check == checks::kDurableLost ||
              check == checks::kDiscardBeforeCommit)
      << check << ": " << failure.minimal.violation.detail;

  std::string error;
  auto replayed = parse_workload(to_text(failure.minimal.workload), error);
  ASSERT_TRUE(replayed) << error;
  EXPECT_TRUE(find_failure(*replayed, check, failure.minimal.cut))
      << "the printed minimal trace does not reproduce the failure";
  replayed->params.skip_destination_flush = false;
  auto fixed = find_failure(*replayed, check, failure.minimal.cut);
  EXPECT_FALSE(fixed) << "the minimal trace fails even with the destination flush: "
                      << fixed->violation.detail;
}

const char* env(const char* name) {
  const char* value = std::getenv(name);
  return value && *value ? value : nullptr;
}

TEST(CrashReplay, Seed) {
  const char* seed = env("HYDRATE_CRASH_SEED");
  if (!seed) GTEST_SKIP() << "set HYDRATE_CRASH_SEED=N to re-run one seed";
  QuietLogs quiet;
  CampaignOptions options = ci_options(std::strtoull(seed, nullptr, 10), 1);
  if (const char* knobs = env("HYDRATE_CRASH_CAMPAIGN")) {
    std::string error;
    ASSERT_TRUE(parse_campaign_knobs(knobs, options, error)) << error;
  }
  Workload w = generate_workload(options.first_seed, options.generator);
  std::cout << "workload: " << to_text(w) << "\n";
  expect_clean(run_campaign(options));
}

TEST(CrashReplay, Trace) {
  const char* text = env("HYDRATE_CRASH_REPLAY");
  if (!text) GTEST_SKIP() << "set HYDRATE_CRASH_REPLAY='workload' [HYDRATE_CRASH_CUT='cut']";
  QuietLogs quiet;
  std::string error;
  auto workload = parse_workload(text, error);
  ASSERT_TRUE(workload) << error;
  std::optional<CutCase> cut;
  if (const char* cut_text = env("HYDRATE_CRASH_CUT")) {
    cut = parse_cut(cut_text, error);
    ASSERT_TRUE(cut) << error;
  }
  RunRecord run = run_workload(*workload);
  for (const Event& e : run.journal->events())
    if (!cut || e.seq < cut->cut) std::cout << "  " << describe(e) << "\n";
  std::vector<Violation> violations = verify_run(run);
  if (cut) {
    CutVerdict verdict = verify_cut(run, *cut, VerifyOptions{});
    violations.insert(violations.end(), verdict.violations.begin(), verdict.violations.end());
    if (verdict.refused_during_create)
      std::cout << "refused (legitimately): " << verdict.refusal << "\n";
  }
  for (const Violation& v : violations) ADD_FAILURE() << v.check << ": " << v.detail;
}

TEST(CrashSoak, Run) {
  const char* range = env("HYDRATE_CRASH_SOAK");
  if (!range) GTEST_SKIP() << "set HYDRATE_CRASH_SOAK=FIRST_SEED:WORKLOADS (bench/crash/soak)";
  QuietLogs quiet;
  char* colon = nullptr;
  uint64_t first = std::strtoull(range, &colon, 10);
  ASSERT_TRUE(colon && *colon == ':')
      << "HYDRATE_CRASH_SOAK=" << range << " is not FIRST:WORKLOADS";
  uint64_t workloads = std::strtoull(colon + 1, nullptr, 10);
  CampaignOptions options = ci_options(first, workloads);
  options.protocol_cuts = 6;
  options.random_cuts = 3;
  if (const char* knobs = env("HYDRATE_CRASH_CAMPAIGN")) {
    std::string error;
    ASSERT_TRUE(parse_campaign_knobs(knobs, options, error)) << error;
  }
  // Progress every 250 workloads: the soak is long.
  const uint64_t chunk = 250;
  CampaignReport total;
  for (uint64_t done = 0; done < workloads; done += chunk) {
    CampaignOptions part = options;
    part.first_seed = first + done;
    part.workloads = std::min(chunk, workloads - done);
    CampaignReport r = run_campaign(part);
    total.workloads += r.workloads;
    total.cases += r.cases;
    total.refused_during_create += r.refused_during_create;
    total.regions_loaded += r.regions_loaded;
    total.client_requests += r.client_requests;
    total.source_discards += r.source_discards;
    total.seconds += r.seconds;
    for (auto& [label, count] : r.cut_labels) total.cut_labels[label] += count;
    for (auto& f : r.failures) total.failures.push_back(f);
    std::cout << "soak progress: seeds " << part.first_seed << ".."
              << part.first_seed + part.workloads - 1 << ": " << summary(r) << "\n"
              << std::flush;
  }
  std::cout << "soak seeds " << first << ".." << first + workloads - 1 << "\n"
            << summary(total) << "\n";
  for (auto& [label, count] : total.cut_labels)
    std::cout << "  " << count << " x " << label << "\n";
  for (const CaseFailure& f : total.failures) ADD_FAILURE() << f.report;
}

}  // namespace
}  // namespace hydrate::crash
