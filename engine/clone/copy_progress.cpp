#include "engine/clone/copy_progress.h"

#include <algorithm>

namespace hydrate {

CopyProgress copy_progress(const CopyProgressInputs& in) {
  CopyProgress p;
  p.data_bytes = in.size - std::min(in.size, in.allocation.hole_bytes);
  p.data_bytes_exact = in.allocation.scanned;
  const uint64_t unhydrated = in.size - std::min(in.size, in.hydrated_bytes);
  // Holes are recorded just before the scan hydrates them, so for a moment unhydrated bytes may
  // include a hole already subtracted from data_bytes: clamp rather than report negative done.
  p.data_remaining_bytes = in.complete ? 0 : std::min(unhydrated, p.data_bytes);
  p.data_hydrated_bytes = p.data_bytes - p.data_remaining_bytes;
  p.percent = p.data_bytes == 0 ? 100.0
                                : 100.0 * static_cast<double>(p.data_hydrated_bytes) /
                                      static_cast<double>(p.data_bytes);
  if (in.complete || p.data_remaining_bytes == 0)
    p.eta_seconds = 0;
  else if (in.data_rate > 0)
    p.eta_seconds = static_cast<double>(p.data_remaining_bytes) / in.data_rate;
  return p;
}

}  // namespace hydrate
