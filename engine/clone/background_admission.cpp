#include "engine/clone/background_admission.h"

#include <cmath>

namespace hydrate {

bool may_send_background(const SourceLoad& load, uint64_t batch_bytes, double min_share) {
  if (load.background_batches == 0) return true;
  const uint64_t after = load.background_bytes + batch_bytes;
  if (after + load.on_demand_bytes <= load.window) return true;
  const auto share = static_cast<uint64_t>(std::ceil(min_share * static_cast<double>(load.window)));
  return after <= share;
}

}  // namespace hydrate
