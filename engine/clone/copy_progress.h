#pragma once

#include <cstdint>

#include "engine/clone/allocation_knowledge.h"

namespace hydrate {

// How far the copy is, in bytes of source data rather than regions (status `percent`,
// `data_*`, `eta_seconds`). Holes hydrated by the allocation scan move no data and take no
// time, so counting them as progress would show a mostly sparse clone nearly done while most of
// its data is still remote.
//
// Everything is derived from the region map and the allocation knowledge, not from counters of
// this process, so it stays right across a restart: the map persists, and the scan runs again
// at start. After the scan every unhydrated region holds data (holes were hydrated by it), so
// data still to fetch is the unhydrated bytes; data done is data total minus that, which counts
// data regions a client overwrote, trimmed or zeroed as done (they need no fetch any more).
struct CopyProgressInputs {
  uint64_t size = 0;            // the clone's size
  uint64_t hydrated_bytes = 0;  // bytes of hydrated regions
  AllocationKnowledge allocation;
  bool complete = false;  // every region hydrated and committed
  double data_rate = 0;   // recent rate of data copied from the source, bytes/s
};

struct CopyProgress {
  // Bytes of the regions that hold source data: what the copy has to move in total. Until the
  // allocation is scanned, unscanned parts count as data (an upper bound; data_bytes_exact
  // false).
  uint64_t data_bytes = 0;
  bool data_bytes_exact = false;
  uint64_t data_remaining_bytes = 0;  // data regions not hydrated yet: still to fetch
  uint64_t data_hydrated_bytes = 0;   // data_bytes - data_remaining_bytes
  double percent = 100;               // data_hydrated over data_bytes; 100 when there is none
  double eta_seconds = -1;            // data_remaining at data_rate; 0 when done; -1 unknown
};

CopyProgress copy_progress(const CopyProgressInputs& in);

}  // namespace hydrate
