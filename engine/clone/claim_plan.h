#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/clone/region_claim.h"

namespace hydrate {

// What an operation wants from CloneCore::plan(): which claims to make over a range of regions
// and which claims of others it must wait for. Every caller of the in-flight table (request
// routing, background hydration) describes itself with one of these, so the I5 rules live in
// one function.
struct ClaimPolicy {
  // Which claims of other operations stop the plan: the caller must wait for the claim to be
  // released and plan again. A claim that does not block is reported as State::other.
  enum class WaitFor {
    nothing,  // skip or share what others hold (TRIM hints, CACHE, background hydration)
    writes,   // share in-flight fetches, wait for client writes (READ)
    any,      // wait for every claim (WRITE: its bytes must land after any fetched data, I5)
  };

  RegionClaim::Kind kind = RegionClaim::Kind::fetch;  // the kind of claims made
  bool on_demand = true;  // claims serve a client request (not background hydration)
  bool claim = true;      // false: report unhydrated, unclaimed runs without claiming them
  WaitFor wait_for = WaitFor::nothing;
  // Claims of others block only where they overlap regions [wait_first, wait_end): a READ
  // shares or skips what lies in its fetch window beyond the client's own bytes.
  uint64_t wait_first = 0;
  uint64_t wait_end = UINT64_MAX;
  uint64_t max_run = UINT64_MAX;  // longest single claim, in regions
  size_t max_claims = SIZE_MAX;   // stop planning after this many claims
};

// The answer of CloneCore::plan(): the range cut into runs, in order, each with its state. The
// claims in `runs` marked `ours` belong to the caller, who must hand each to CloneCore::store(),
// hydrate_without_data() or release() exactly once.
struct ClaimPlan {
  enum class State {
    hydrated,   // valid on the destination: read or write it there
    other,      // claimed by another operation that does not block this one (`claim` is it)
    ours,       // claimed for the caller by this plan (`claim` is it)
    unclaimed,  // unhydrated and unclaimed, and the policy said not to claim
  };
  struct Run {
    uint64_t first;
    uint64_t count;
    State state;
    std::shared_ptr<RegionClaim> claim;  // for `other` and `ours`
    uint64_t end() const { return first + count; }
  };

  std::vector<Run> runs;
  // Set when a claim the policy waits for stood in the range. Then `runs` is empty and the plan
  // holds no claims: wait for blocker->done and plan again.
  std::shared_ptr<RegionClaim> blocker;
  // First region not planned (the range's end, or where max_claims stopped the plan).
  uint64_t end = 0;

  // The claims made for the caller, in region order.
  std::vector<std::shared_ptr<RegionClaim>> ours() const {
    std::vector<std::shared_ptr<RegionClaim>> out;
    for (const Run& run : runs)
      if (run.state == State::ours) out.push_back(run.claim);
    return out;
  }
};

}  // namespace hydrate
