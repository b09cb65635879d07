#pragma once

#include <cstdint>

namespace hydrate {

// What is in flight at the source when the hydrator considers sending another batch.
struct SourceLoad {
  uint64_t window = 0;            // bytes the link holds without queueing (WindowController)
  uint64_t background_bytes = 0;  // background batches sent and not yet answered
  uint64_t background_batches = 0;
  uint64_t on_demand_bytes = 0;  // clients' reads sent and not yet answered
};

// The one rule for sharing the source between clients and the background copy (DESIGN §5):
// on-demand reads take their place in the window first and the background fills what is left,
// so the bytes queued ahead of a client's next read stay near one window; but the background
// always keeps `min_share` of the window (and at least one batch moving), so a busy client
// slows the copy without ever stopping it (dm-clone stops it completely).
bool may_send_background(const SourceLoad& load, uint64_t batch_bytes, double min_share);

}  // namespace hydrate
