#include "engine/clone/inflight_table.h"

#include <cassert>

namespace hydrate {

std::shared_ptr<RegionClaim> InflightTable::find(uint64_t region) const {
  auto it = claims_.upper_bound(region);
  if (it == claims_.begin()) return nullptr;
  --it;
  return region < it->second->end() ? it->second : nullptr;
}

uint64_t InflightTable::next_claimed(uint64_t region) const {
  if (find(region)) return region;
  auto it = claims_.upper_bound(region);
  return it == claims_.end() ? UINT64_MAX : it->first;
}

std::shared_ptr<RegionClaim> InflightTable::insert(RegionClaim::Kind kind, uint64_t first,
                                                   uint64_t count, bool on_demand) {
  assert(count > 0);
  assert(next_claimed(first) >= first + count);
  auto claim = std::make_shared<RegionClaim>(kind, first, count, on_demand);
  claims_.emplace(first, claim);
  claimed_regions_ += count;
  return claim;
}

void InflightTable::erase(const RegionClaim& claim) {
  auto it = claims_.find(claim.first);
  if (it != claims_.end() && it->second.get() == &claim) {
    claims_.erase(it);
    claimed_regions_ -= claim.count;
  }
}

size_t InflightTable::size() const { return claims_.size(); }

}  // namespace hydrate
