#include "engine/profile/prefetch_order.h"

#include <algorithm>

namespace hydrate {

std::string merge_profiles(const std::vector<AccessProfile>& inputs, AccessProfile& out) {
  if (inputs.empty()) return "no profiles to merge";
  const AccessProfile& base = inputs.front();
  for (size_t i = 1; i < inputs.size(); ++i) {
    if (std::string why = profile_mismatch(inputs[i], base.source_size, base.region_size);
        !why.empty())
      return "input " + std::to_string(i) + " " + why;
  }
  AccessProfile merged;
  merged.source_size = base.source_size;
  merged.region_size = base.region_size;
  merged.source_identity = base.source_identity;
  std::vector<bool> seen(base.region_count_of_source(), false);
  size_t longest = 0;
  for (const AccessProfile& p : inputs) longest = std::max(longest, p.runs.size());
  for (size_t j = 0; j < longest; ++j) {
    for (const AccessProfile& p : inputs) {
      if (j >= p.runs.size()) continue;
      const ProfileRun& run = p.runs[j];
      // Decoded profiles lie inside the source; clip anyway, merge takes any AccessProfile.
      const uint64_t end = std::min<uint64_t>(run.end(), seen.size());
      for (uint64_t r = run.first; r < end; ++r) {
        if (seen[r]) continue;
        seen[r] = true;
        if (!merged.runs.empty() && merged.runs.back().end() == r)
          ++merged.runs.back().count;
        else
          merged.runs.push_back({r, 1});
      }
    }
  }
  out = std::move(merged);
  return {};
}

PrefetchOrder::PrefetchOrder(std::vector<ProfileRun> runs) : runs_(std::move(runs)) {
  for (const ProfileRun& r : runs_) regions_ += r.count;
}

std::optional<ProfileRun> PrefetchOrder::next(const RegionMap& map, uint64_t max_regions) {
  std::lock_guard lock(mutex_);
  max_regions = std::max<uint64_t>(1, max_regions);
  const uint64_t count = map.region_count();
  // Skip to the next unhydrated profile region.
  while (run_ < runs_.size()) {
    const ProfileRun& run = runs_[run_];
    uint64_t r = run.first + offset_;
    if (offset_ >= run.count || r >= count) {
      ++run_;
      offset_ = 0;
      continue;
    }
    if (!map.test(r)) break;
    offset_ += std::max<uint64_t>(1, map.run_length(r, run.count - offset_));
  }
  if (run_ >= runs_.size()) return std::nullopt;

  // Extend through unhydrated regions that follow on the device, across profile runs that
  // continue where the previous one ended.
  ProfileRun out{runs_[run_].first + offset_, 0};
  while (run_ < runs_.size() && out.count < max_regions) {
    const ProfileRun& run = runs_[run_];
    uint64_t r = run.first + offset_;
    if (r != out.end() || r >= count || map.test(r)) break;
    ++out.count;
    if (++offset_ >= run.count) {
      ++run_;
      offset_ = 0;
    }
  }
  return out;
}

uint64_t PrefetchOrder::remaining(const RegionMap& map) const {
  uint64_t left = 0;
  for (const ProfileRun& run : runs_) {
    const uint64_t end = std::min(run.end(), map.region_count());
    for (uint64_t r = run.first; r < end; ++r)
      if (!map.test(r)) ++left;
  }
  return left;
}

}  // namespace hydrate
