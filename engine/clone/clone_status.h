#pragma once

#include <cstdint>
#include <string>

#include "engine/clone/clone_settings.h"
#include "engine/source.h"

namespace hydrate {

// The lifecycle of a clone as operators see it (`hydrate status`).
enum class CloneState {
  starting,    // metadata loaded, waiting for the source
  hydrating,   // background hydration running
  paused,      // background hydration paused by an operator (on-demand still works)
  complete,    // every region hydrated and committed; the source is released
  read_only,   // a destination or metadata failure: writes and flushes fail with EIO
  failed,      // cannot serve (e.g. the source turned out to be a different one)
};

const char* to_string(CloneState state);

// Boot profile recording and prefetch (docs/profile-format.md).
struct ProfileStatus {
  bool recording = false;
  uint64_t recorded_regions = 0;
  std::string file;  // where the recording goes; empty when not recording
  uint64_t prefetch_regions = 0;
  uint64_t prefetch_remaining = 0;
};

struct CloneStatus {
  std::string name;
  CloneState state = CloneState::starting;
  std::string reason;  // why read_only / failed / starting
  uint64_t size = 0;
  uint32_t region_size = 0;
  uint64_t regions = 0;
  uint64_t hydrated_regions = 0;
  uint64_t hydrated_bytes = 0;
  uint64_t committed_regions = 0;
  double regions_percent = 0;  // hydrated_regions over regions, holes included
  // The copy's progress in bytes of source data (engine/clone/copy_progress.h, and
  // docs/operations.md "Progress"): holes hydrated by the allocation scan are not progress.
  bool allocation_scanned = false;        // data_bytes is exact (else an upper bound)
  uint64_t data_bytes = 0;                // bytes of regions holding source data
  uint64_t data_hydrated_bytes = 0;       // of those, hydrated (fetched, or written by a client)
  uint64_t data_remaining_bytes = 0;      // of those, still to fetch
  double percent = 0;                     // data_hydrated_bytes over data_bytes; 100 when none
  double rate_bytes_per_second = 0;       // recent region hydration rate, holes included
  double data_rate_bytes_per_second = 0;  // recent rate of data fetched from the source
  double eta_seconds = -1;  // data_remaining_bytes at the data rate; 0 when done; -1 unknown
  uint64_t inflight_bytes = 0;
  uint64_t window_bytes = 0;         // current adaptive background window
  uint64_t fetched_bytes = 0;        // bytes moved from the source by this process
  uint64_t zeroed_bytes = 0;         // bytes hydrated without moving data (holes, zeroes, trims)
  uint64_t on_demand_fetches = 0;
  uint64_t hydration_errors = 0;
  uint64_t commits = 0;
  uint64_t generation = 0;
  int64_t last_commit_unix_ms = 0;
  HydrationSettings hydration;
  SourceStats source;
  ProfileStatus profile;
};

}  // namespace hydrate
