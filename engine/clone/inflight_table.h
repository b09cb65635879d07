#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "engine/clone/region_claim.h"

namespace hydrate {

// The regions currently claimed, as non-overlapping runs keyed by first region. Callers hold
// mutex() across a look-up and the claims they make, so checking "hydrated? claimed?" and
// claiming is one atomic step.
class InflightTable {
 public:
  std::mutex& mutex() { return mutex_; }

  // The claim covering `region`, or null. Requires mutex().
  std::shared_ptr<RegionClaim> find(uint64_t region) const;
  // First region >= `region` that is claimed, or UINT64_MAX. Requires mutex().
  uint64_t next_claimed(uint64_t region) const;
  // Requires mutex(); the run must not overlap an existing claim.
  std::shared_ptr<RegionClaim> insert(RegionClaim::Kind kind, uint64_t first, uint64_t count,
                                      bool on_demand);
  // Requires mutex().
  void erase(const RegionClaim& claim);

  size_t size() const;  // requires mutex()
  uint64_t claimed_regions() const { return claimed_regions_; }  // requires mutex()

 private:
  std::mutex mutex_;
  std::map<uint64_t, std::shared_ptr<RegionClaim>> claims_;
  uint64_t claimed_regions_ = 0;
};

}  // namespace hydrate
