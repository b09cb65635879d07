#include "tests/crash/failure_report.h"

#include "tests/crash/workload_runner.h"

namespace hydrate::crash {

std::string format_failure(const CaseFailure& failure, const CampaignOptions& options) {
  const FailingCase& minimal = failure.minimal;
  std::string out = "=== crash campaign FAILURE: " + minimal.violation.check + "\n";
  out += "seed " + std::to_string(failure.seed) + ", found at case " +
         std::to_string(failure.case_number) + "; shrunk from " +
         std::to_string(failure.original_ops) + " to " +
         std::to_string(minimal.workload.ops.size()) + " client requests in " +
         std::to_string(failure.shrink_attempts) + " attempts\n";
  out += "violation: " + minimal.violation.detail + "\n";
  if (failure.original.violation.detail != minimal.violation.detail)
    out += "original violation: " + failure.original.violation.detail + "\n";
  out += "minimal trace:\n  workload: " + to_text(minimal.workload) + "\n";
  if (minimal.cut) {
    out += "  power cut at @" + std::to_string(minimal.cut->cut) + " (" + minimal.cut->label +
           "), destination " + to_string(minimal.cut->destination) + ", metadata " +
           to_string(minimal.cut->metadata) + "\n";
  } else {
    out += "  no power cut needed: the run itself fails\n";
  }

  RunRecord run = run_workload(minimal.workload);
  const uint64_t until = minimal.cut ? minimal.cut->cut : run.end;
  std::vector<std::string> lines;
  for (const Event& e : run.journal->events()) {
    if (e.seq >= until) break;
    lines.push_back("    " + describe(e));
  }
  constexpr size_t kShown = 80;
  out += "  journal up to the cut (" + std::to_string(lines.size()) + " events):\n";
  if (lines.size() > kShown)
    out += "    ... " + std::to_string(lines.size() - kShown) + " earlier events\n";
  for (size_t i = lines.size() > kShown ? lines.size() - kShown : 0; i < lines.size(); ++i)
    out += lines[i] + "\n";
  out += "reproduce the minimal trace:\n  " + trace_command(minimal) + "\n";
  out += "reproduce the seed:\n  " + seed_command(failure.seed, options) + "\n";
  return out;
}

}  // namespace hydrate::crash
