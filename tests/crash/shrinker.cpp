#include "tests/crash/shrinker.h"

#include <algorithm>

#include "tests/crash/cut_points.h"
#include "tests/crash/workload_runner.h"

namespace hydrate::crash {
namespace {

bool run_level(const std::string& check) {
  return check == checks::kRun || check == checks::kReadDuringWorkload ||
         check == checks::kDiscardBeforeCommit;
}

}  // namespace

std::optional<FailingCase> find_failure(const Workload& workload, const std::string& check,
                                        const std::optional<CutCase>& hint,
                                        size_t max_verifications) {
  RunRecord run = run_workload(workload);
  for (Violation& v : verify_run(run)) {
    if (v.check == check) return FailingCase{workload, std::nullopt, std::move(v)};
  }
  if (run_level(check)) return std::nullopt;

  VerifyOptions options;
  options.complete_hydration = check == checks::kStableReads || check == checks::kReopen;
  std::vector<CutCase> tries;
  if (hint && hint->cut <= run.end) tries.push_back(*hint);
  const LossPolicy seeded_d = hint ? hint->destination : LossPolicy::random_from(1);
  const LossPolicy seeded_m = hint ? hint->metadata : LossPolicy::random_from(2);
  std::vector<CutPoint> points = commit_protocol_cuts(run.journal->events(), run.end);
  // Spread the budget evenly over the protocol steps when there are too many.
  const size_t per_point = 4;
  size_t stride =
      std::max<size_t>(1, points.size() * per_point / std::max<size_t>(1, max_verifications));
  for (size_t i = 0; i < points.size(); i += stride) {
    const CutPoint& point = points[i];
    for (auto [d, m] :
         {std::pair{seeded_d, seeded_m}, std::pair{LossPolicy::none(), LossPolicy::none()},
          std::pair{LossPolicy::none(), LossPolicy::all()},
          std::pair{LossPolicy::all(), LossPolicy::none()}})
      tries.push_back(CutCase{point.seq, d, m, point.label});
  }
  for (size_t i = 0; i < tries.size() && i < max_verifications + 1; ++i) {
    CutVerdict verdict = verify_cut(run, tries[i], options);
    for (Violation& v : verdict.violations)
      if (v.check == check) return FailingCase{workload, tries[i], std::move(v)};
  }
  return std::nullopt;
}

ShrinkResult shrink(const FailingCase& failing, std::chrono::seconds budget) {
  const auto deadline = std::chrono::steady_clock::now() + budget;
  ShrinkResult result;
  result.minimal = failing;
  const std::string check = failing.violation.check;
  auto out_of_time = [&] {
    if (std::chrono::steady_clock::now() < deadline) return false;
    result.budget_exhausted = true;
    return true;
  };
  // Keeps `candidate` if it still fails the same way.
  auto try_candidate = [&](const Workload& candidate) {
    ++result.attempts;
    auto found = find_failure(candidate, check, result.minimal.cut);
    if (!found) return false;
    result.minimal = std::move(*found);
    return true;
  };

  // ddmin over the client operations.
  size_t granularity = 2;
  while (!result.minimal.workload.ops.empty() && !out_of_time()) {
    const std::vector<ClientOp>& ops = result.minimal.workload.ops;
    const size_t size = ops.size();
    granularity = std::min(granularity, size);
    const size_t chunk = (size + granularity - 1) / granularity;
    bool reduced = false;
    for (size_t start = 0; start < size && !out_of_time(); start += chunk) {
      Workload candidate = result.minimal.workload;
      candidate.ops.erase(
          candidate.ops.begin() + static_cast<ptrdiff_t>(start),
          candidate.ops.begin() + static_cast<ptrdiff_t>(std::min(size, start + chunk)));
      if (try_candidate(candidate)) {
        reduced = true;
        granularity = std::max<size_t>(granularity - 1, 2);
        break;
      }
    }
    if (!reduced) {
      if (granularity >= size) break;
      granularity = std::min(size, granularity * 2);
    }
  }

  // Simpler settings, one at a time.
  using Change = void (*)(CaseParams&, std::vector<ClientOp>&);
  const Change changes[] = {
      [](CaseParams& p, std::vector<ClientOp>&) {
        p.hydration = false, p.wait_for_completion = false;
      },
      [](CaseParams& p, std::vector<ClientOp>&) { p.wait_for_completion = false; },
      [](CaseParams& p, std::vector<ClientOp>&) { p.copy_on_read = false; },
      [](CaseParams& p, std::vector<ClientOp>&) { p.discard_source = false; },
      [](CaseParams& p, std::vector<ClientOp>&) { p.holes.clear(); },
      [](CaseParams& p, std::vector<ClientOp>&) { p.device_latency = 0; },
      [](CaseParams& p, std::vector<ClientOp>&) { p.source_latency = 0; },
      [](CaseParams& p, std::vector<ClientOp>& ops) {
        p.connections = 1;
        for (ClientOp& op : ops) op.connection = 0;
      },
      [](CaseParams&, std::vector<ClientOp>& ops) {
        for (ClientOp& op : ops) op.pause = 0;
      },
  };
  for (Change change : changes) {
    if (out_of_time()) break;
    Workload candidate = result.minimal.workload;
    change(candidate.params, candidate.ops);
    if (to_text(candidate) == to_text(result.minimal.workload)) continue;
    try_candidate(candidate);
  }

  // A smaller device, halving while every request still fits (holes are clipped).
  while (!out_of_time()) {
    Workload candidate = result.minimal.workload;
    CaseParams& p = candidate.params;
    const uint64_t half = p.size / 2 / 512 * 512;
    bool fits = half >= p.region_size;
    for (const ClientOp& op : candidate.ops) fits &= !op.ranged() || op.offset + op.length <= half;
    if (!fits) break;
    p.size = half;
    std::vector<ByteRange> holes;
    for (ByteRange h : p.holes) {
      if (h.offset >= half) continue;
      h.length = std::min(h.length, half - h.offset);
      holes.push_back(h);
    }
    p.holes = holes;
    if (!try_candidate(candidate)) break;
  }
  return result;
}

}  // namespace hydrate::crash
