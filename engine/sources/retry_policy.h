#pragma once

#include <chrono>

namespace hydrate {

// Exponential backoff with jitter, used both to reconnect to a source and to re-try a request
// the source failed. The jitter keeps the connections of one source (and the hydrate processes
// behind one backup server) from reconnecting in lockstep after an outage.
struct RetryPolicy {
  std::chrono::milliseconds initial{100};
  std::chrono::milliseconds max{10'000};
  double multiplier = 2.0;
  // Each delay is scaled by a random factor in [1 - jitter, 1 + jitter], then capped at `max`.
  double jitter = 0.2;

  // How long to wait before retry number `retry` (0 = the first retry).
  std::chrono::milliseconds delay(unsigned retry) const;
};

}  // namespace hydrate
