#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "engine/async_event.h"
#include "engine/extent.h"
#include "engine/io_result.h"

namespace hydrate {

// Exclusive ownership of a run of unhydrated regions by one operation (I5): a fetch from the
// source (on-demand, copy-on-read, CACHE or background) or a client write that hydrates them.
// Anything else touching these regions waits on the claim instead of racing it, so data fetched
// from the source can never land on a region a client write has touched, and nothing is fetched
// twice.
struct RegionClaim {
  enum class Kind { fetch, write };

  RegionClaim(Kind k, uint64_t first_region, uint64_t region_count, bool on_demand_)
      : kind(k), first(first_region), count(region_count), on_demand(on_demand_) {}

  const Kind kind;
  const uint64_t first;
  const uint64_t count;
  const bool on_demand;

  uint64_t end() const { return first + count; }

  // Fetch claims: set once the source read finished; `data` then holds `bytes` (on success).
  AsyncEvent data_ready;
  IoResult fetch_result;
  std::shared_ptr<std::byte[]> data;
  ByteRange bytes;

  // Set once the claim is released: the bits are set (success) or not (failure), and the claim
  // is out of the in-flight table.
  AsyncEvent done;
  bool hydrated = false;
};

}  // namespace hydrate
