#pragma once

#include <chrono>

#include "engine/sources/retry_policy.h"

namespace hydrate {

// How a clone talks to its source (config: clone.source_connections, clone.source_timeout, …).
struct SourceOptions {
  // Upper bound on NBD connections; more than one only when the server advertises multi-conn.
  unsigned connections = 4;
  // Requests one connection keeps in flight usefully; nbdkit serves 16 at a time by default.
  unsigned depth_per_connection = 16;
  // A request that has not succeeded this long after it was made fails with EIO, whether the
  // source was unreachable or kept answering with errors (DESIGN.md §5, "Source loss").
  std::chrono::milliseconds source_timeout{60'000};
  // open() fails when no connection (handshake included) succeeded within this time; it also
  // bounds every single connection attempt.
  std::chrono::milliseconds connect_timeout{30'000};
  RetryPolicy backoff;
  // Only for discard_source_after_commit (invariant I6): allows discard() on the source.
  bool writable = false;
};

}  // namespace hydrate
