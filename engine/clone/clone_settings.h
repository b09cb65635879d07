#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

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

// Boot profiles (docs/profile-format.md): what this clone records, and what it prefetches.
struct ProfileSettings {
  bool record = true;
  // Where to record. Empty: `dir`/profile_file_name(source identity); with no dir either,
  // nothing is recorded (config/ fills in `<metadata path>.hprof` then).
  std::string file;
  // profile.dir: profiles named by source identity. A new clone without `prefetch` uses the
  // one recorded there for its source, if any.
  std::string dir;
  uint64_t record_limit_bytes = 2ull << 30;
  std::chrono::milliseconds record_time{std::chrono::minutes(10)};
  // hydration.prefetch: profile files whose regions are hydrated first, in recorded order.
  std::vector<std::string> prefetch;
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
  ProfileSettings profile;

  // Test-only: commit without flushing the destination first (breaks I2). Exists so the
  // crash campaign can prove it catches a broken commit order; never set in production.
  bool unsafe_skip_destination_flush = false;
};

}  // namespace hydrate
