#pragma once

#include <cstdint>

namespace hydrate {

// What the background's allocation scan has learned about the source so far
// (Hydrator::allocation()), for progress that counts data rather than regions.
struct AllocationKnowledge {
  // Bytes of the regions lying wholly inside source holes in the part scanned so far: the
  // regions the scan hydrates without moving data. Regions only partly in a hole hold data.
  uint64_t hole_bytes = 0;
  // True once the whole source has been scanned in this process, so hole_bytes is final. A
  // source without allocation information is "scanned" with no holes: all of it is data.
  bool scanned = false;
};

}  // namespace hydrate
