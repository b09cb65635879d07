#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace hydrate {

inline constexpr uint32_t kDefaultRegionSize = 64u << 10;

// Live-adjustable knobs of background hydration (`hydrate ctl EXPORT set …`).
struct HydrationSettings {
  bool enabled = true;
  uint64_t batch_bytes = 4u << 20;          // largest contiguous fetch
  uint64_t max_inflight_bytes = 64u << 20;  // upper bound of the adaptive window
  uint64_t rate_bytes_per_second = 0;       // 0 = unlimited
  // Percent of the in-flight window the background keeps even while clients' reads fill it
  // (DESIGN §5): 0 lets busy clients hold the copy to one batch at a time, 100 ignores them.
  unsigned min_share_percent = 25;
};

// Everything a CloneVolume needs besides its devices and source (config/ fills it from YAML).
struct CloneSettings {
  std::string name;         // export name, for logs and errors
  std::string description;
  bool read_only = false;   // refuse client writes; hydration still runs
  // 0: what the metadata recorded, or kDefaultRegionSize for a new clone.
  uint32_t region_size = 0;
  uint32_t fetch_window = 128u << 10;  // read misses fetch this aligned window
  bool copy_on_read = true;
  bool discard_passdown = true;
  bool destination_zeroed = false;     // unhydrated destination bytes are known to read zero
  bool discard_source_after_commit = false;
  std::chrono::milliseconds commit_interval{1000};
  std::chrono::milliseconds source_timeout{60'000};
  HydrationSettings hydration;

  // Test-only: commit without flushing the destination first (breaks I2). Exists so the
  // crash campaign can prove it catches a broken commit order; never set in production.
  bool unsafe_skip_destination_flush = false;
};

}  // namespace hydrate
