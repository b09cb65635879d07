#pragma once

#include <cstdint>

namespace hydrate {

// What is in flight at the source when the hydrator considers sending another batch.
struct SourceLoad {
  uint64_t window = 0;            // bytes the link holds without queueing (WindowController)
  uint64_t background_bytes = 0;  // background batches sent and not yet answered
  uint64_t background_batches = 0;
  uint64_t on_demand_bytes = 0;  // clients' reads sent and not yet answered
  // Clients are reading from the source: a read is in flight or one finished within about a
  // round trip (a reader waiting for one read before sending the next leaves the source idle
  // only for a moment, and must not find it full of background work when it comes back).
  bool clients_reading = false;
};

// What a background batch is for.
enum class BackgroundKind {
  predicted,  // regions clients are known to read soon: a boot profile
  bulk,       // the walk, and readahead after clients' misses (a guess)
};

// The one rule for sharing the source between clients and the background copy (DESIGN §5).
// Returns how many bytes the next batch of `kind` may carry now (a multiple of `region`, at
// most `batch`), or 0 when it must wait.
//
// - On-demand reads take their place in the window first, and predicted batches fill the rest:
//   they are the clients' next reads, fetched before they are asked for.
// - While clients are reading, bulk batches keep only their guaranteed share, `min_share` of
//   the window, in batches no larger than that share: on a link that serves bytes in order,
//   every background byte ahead of a client's read delays it, so the rest of the window is
//   the clients'. Otherwise bulk batches fill the window.
// - Progress never stops: with nothing of its own in flight, the background always sends one
//   batch (dm-clone stops the copy entirely under client load).
uint64_t background_allowance(const SourceLoad& load, uint64_t batch, uint64_t region,
                              double min_share, BackgroundKind kind);

}  // namespace hydrate
