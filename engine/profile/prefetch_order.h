#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "engine/profile/access_profile_format.h"
#include "engine/region_map.h"

namespace hydrate {

// Unions profiles into one order: the inputs' runs taken in turn (run 0 of each input, then
// run 1 of each, …), each region kept at its first appearance. All inputs must share source
// size and region size; the error names the index of the first that does not.
std::string merge_profiles(const std::vector<AccessProfile>& inputs, AccessProfile& out);

// The profile-first phase of background hydration: walks a profile's regions in recorded order
// and hands out the next run of unhydrated regions, coalescing regions that are adjacent both
// in the profile and on the device into batches of up to `max_regions`. Regions hydrated
// meanwhile (by clients or earlier batches) are skipped. Thread-safe.
class PrefetchOrder {
 public:
  PrefetchOrder() = default;
  explicit PrefetchOrder(std::vector<ProfileRun> runs);

  // The next run to hydrate, or nullopt once the profile is exhausted.
  std::optional<ProfileRun> next(const RegionMap& map, uint64_t max_regions);

  uint64_t regions() const { return regions_; }
  // Profile regions not hydrated yet (for status).
  uint64_t remaining(const RegionMap& map) const;
  bool empty() const { return runs_.empty(); }

 private:
  std::vector<ProfileRun> runs_;
  uint64_t regions_ = 0;
  mutable std::mutex mutex_;
  size_t run_ = 0;  // position: runs_[run_], region runs_[run_].first + offset_
  uint64_t offset_ = 0;
};

}  // namespace hydrate
