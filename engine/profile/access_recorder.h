#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include "engine/profile/access_profile_format.h"

namespace hydrate {

// Records the order in which clients first touch regions (a boot profile). Called on every
// client request, so it is cheap: once a limit is reached it costs one atomic load. Touches
// are recorded whether the region was hydrated or not, and whatever hydrated it (a prefetch
// does not count: only clients call note()). Thread-safe.
class AccessRecorder {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  struct Limits {
    uint64_t bytes = 2ull << 30;  // stop after this many bytes of regions
    std::chrono::milliseconds time = std::chrono::minutes(10);  // or this long after creation
  };

  // `clock` is injectable for tests; the default is steady_clock::now.
  AccessRecorder(uint64_t source_size, uint32_t region_size, std::string source_identity,
                 Limits limits, Clock clock = {});

  // Clients touched regions [first, end).
  void note(uint64_t first, uint64_t end);

  bool recording() const { return recording_.load(std::memory_order_acquire); }
  uint64_t recorded_regions() const;
  // Bumped by every note() that recorded something, so a writer can skip unchanged profiles.
  uint64_t version() const;
  // A copy of what was recorded so far.
  AccessProfile snapshot() const;

 private:
  bool over_limit_locked(std::chrono::steady_clock::time_point now) const;

  const uint32_t region_size_;
  const Limits limits_;
  const Clock clock_;
  const std::chrono::steady_clock::time_point started_;
  std::atomic<bool> recording_{true};

  mutable std::mutex mutex_;
  AccessProfile profile_;
  std::vector<bool> seen_;
  uint64_t recorded_ = 0;
  uint64_t version_ = 0;
};

}  // namespace hydrate
