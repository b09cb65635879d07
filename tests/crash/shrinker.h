#pragma once

#include <chrono>
#include <optional>

#include "tests/crash/crash_verifier.h"
#include "tests/crash/workload.h"

namespace hydrate::crash {

// A failing crash case: the workload, the cut (none when the failure shows without a cut, e.g.
// a bad read during the workload) and the first violation.
struct FailingCase {
  Workload workload;
  std::optional<CutCase> cut;
  Violation violation;
};

struct ShrinkResult {
  FailingCase minimal;
  unsigned attempts = 0;  // workload runs tried
  bool budget_exhausted = false;
};

// Looks for a cut of `workload` (trying `hint` first, then every commit-protocol cut with a few
// loss policies) that fails the same check as `check`. Null when none does.
std::optional<FailingCase> find_failure(const Workload& workload, const std::string& check,
                                        const std::optional<CutCase>& hint,
                                        size_t max_verifications = 160);

// Shrinks a failing case to a small trace that still fails the same check: delta debugging
// over the client operations (ddmin), then simpler settings (no background hydration, no
// copy-on-read, no source discards, no latency, one connection, no holes, a smaller device),
// each kept only if the failure persists. The cut is re-found for every candidate, so it is the
// earliest failing one of the final workload. Bounded by `budget` of wall-clock time.
ShrinkResult shrink(const FailingCase& failing, std::chrono::seconds budget);

}  // namespace hydrate::crash
