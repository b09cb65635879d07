#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "tests/crash/crash_verifier.h"
#include "tests/crash/shrinker.h"
#include "tests/crash/workload.h"

namespace hydrate::crash {

struct CampaignOptions {
  uint64_t first_seed = 1;
  uint64_t workloads = 50;  // seeds first_seed .. first_seed + workloads - 1
  uint64_t max_cases = 0;   // stop once this many cuts were verified (0: no limit)
  // Cuts per workload: commit-protocol steps sampled from the run (or every one of them), plus
  // cuts at uniformly random journal positions (including during the metadata's creation).
  unsigned protocol_cuts = 4;
  bool every_protocol_cut = false;
  unsigned random_cuts = 2;
  GeneratorOptions generator;
  VerifyOptions verify;
  bool stop_at_first_failure = false;
  bool shrink = true;
  std::chrono::seconds shrink_budget{60};
  // Progress and failure reports, one block of lines at a time (e.g. to stdout).
  std::function<void(const std::string&)> log;
};

struct CaseFailure {
  uint64_t seed = 0;
  uint64_t case_number = 0;  // cases verified when it was found (1-based)
  FailingCase original;
  FailingCase minimal;
  size_t original_ops = 0;
  unsigned shrink_attempts = 0;
  std::string report;  // the trace and the commands that reproduce it
};

struct CampaignReport {
  uint64_t workloads = 0;
  uint64_t cases = 0;                  // power cuts verified
  uint64_t refused_during_create = 0;  // legitimate refusals (cut before the metadata existed)
  uint64_t regions_loaded = 0;         // over every cut: how much the checks (b) covered
  uint64_t client_requests = 0;
  uint64_t source_discards = 0;
  std::map<std::string, uint64_t> cut_labels;  // how often each protocol step was cut
  std::vector<CaseFailure> failures;
  double seconds = 0;
};

// The cuts the campaign verifies for one recorded run (deterministic in `seed`).
std::vector<CutCase> choose_cuts(const RunRecord& run, uint64_t seed,
                                 const CampaignOptions& options);

// Runs the randomized crash campaign: for each seed, generate a workload, run it, check the run,
// then verify each chosen cut against a fresh engine. Failures are shrunk and reported with
// a one-line reproduction command.
CampaignReport run_campaign(const CampaignOptions& options);

// One line summarising a report (cases, time, failures).
std::string summary(const CampaignReport& report);

// The campaign knobs seed_command() passes (HYDRATE_CRASH_CAMPAIGN), applied to `options`:
// protocol, every, random, minsize, maxsize, conns, minops, maxops, skipflush, knownbugs, and
// stopfirst (stop at the first failure) and shrinksecs (shrink budget) for manual runs.
bool parse_campaign_knobs(std::string_view text, CampaignOptions& options, std::string& error);

// The command that re-runs the campaign for exactly this seed with these options.
std::string seed_command(uint64_t seed, const CampaignOptions& options);
// The command that replays one workload and cut.
std::string trace_command(const FailingCase& failing);

}  // namespace hydrate::crash
