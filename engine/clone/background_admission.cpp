#include "engine/clone/background_admission.h"

#include <algorithm>
#include <cmath>

namespace hydrate {
namespace {

uint64_t share_bytes(uint64_t window, double min_share) {
  return static_cast<uint64_t>(std::ceil(min_share * static_cast<double>(window)));
}

// The bulk batch while clients read: no larger than the share, so the bytes it puts ahead of
// a client's read stay within it; at least one region.
uint64_t shared_batch(uint64_t share, uint64_t batch, uint64_t region) {
  return std::clamp(share / region * region, region, batch);
}

}  // namespace

uint64_t background_allowance(const SourceLoad& load, uint64_t batch, uint64_t region,
                              double min_share, BackgroundKind kind) {
  region = std::max<uint64_t>(1, region);
  batch = std::max(batch, region);
  const uint64_t share = share_bytes(load.window, min_share);
  const bool window_free = load.background_bytes + batch + load.on_demand_bytes <= load.window;
  if (kind == BackgroundKind::predicted || !load.clients_reading) {
    if (load.background_batches == 0 || window_free) return batch;
    return load.background_bytes + batch <= share ? batch : 0;
  }
  const uint64_t small = shared_batch(share, batch, region);
  if (load.background_batches == 0) return small;
  return load.background_bytes + small <= share ? small : 0;
}

}  // namespace hydrate
