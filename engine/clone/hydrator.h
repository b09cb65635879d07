#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/async_event.h"
#include "engine/clone/allocation_knowledge.h"
#include "engine/clone/background_admission.h"
#include "engine/clone/clone_core.h"
#include "engine/clone/rate_limiter.h"
#include "engine/clone/readahead_hints.h"
#include "engine/clone/window_controller.h"
#include "engine/profile/prefetch_order.h"

namespace hydrate {

// Background hydration (DESIGN §5). First it fetches the source's allocation map in a few
// large BLOCK_STATUS calls and hydrates holes without moving data; then it walks the map and
// copies contiguous unhydrated regions in large batches, keeping an adaptive window of bytes in
// flight. What clients will read next goes first — the boot profile, then readahead after their
// latest misses (ReadaheadHints) — then the walk from the start of the map. On-demand work goes
// first at the source: while clients read, the walk gives up source capacity, but never below
// its guaranteed share (background_allowance). When everything is hydrated and
// committed it marks the clone complete and releases the source.
class Hydrator {
 public:
  Hydrator(CloneCore& core, asio::any_io_executor executor);
  ~Hydrator();

  // Boot profile (before start()): its regions are hydrated first, in recorded order, once
  // the allocation scan is done; then the usual walk from the start of the map.
  void set_prefetch(std::shared_ptr<PrefetchOrder> order) { prefetch_ = std::move(order); }
  void start();
  // Stops issuing new batches and waits for the ones in flight.
  asio::awaitable<void> stop();
  // stop(), giving up the wait after `grace`: true when the hydrator has stopped.
  asio::awaitable<bool> stop_within(std::chrono::steady_clock::duration grace);
  // Re-plan now (a claim was released, settings changed, state changed). Thread-safe.
  void wake();
  // A client's read missed and fetched regions [first_region, end_region): the regions after
  // it are copied next, ahead of the walk (ReadaheadHints). Thread-safe.
  void note_miss(uint64_t first_region, uint64_t end_region);

  // True when the source's allocation for [offset, offset + length) has been scanned, so
  // unhydrated regions there are known to hold data (holes were hydrated by the scan).
  bool scanned(uint64_t offset, uint64_t length) const;
  // Holes found so far and whether the whole source is scanned, for data progress in status.
  AllocationKnowledge allocation() const;
  uint64_t window() const { return window_.window(); }
  // Set once the clone is complete (every region hydrated and committed).
  AsyncEvent& completed() { return completed_; }

 private:
  asio::awaitable<void> run();
  asio::awaitable<void> wait_source();
  asio::awaitable<void> scan_allocation();
  asio::awaitable<void> scan_chunk(uint64_t chunk);
  asio::awaitable<void> hydrate_hole(uint64_t offset, uint64_t length);
  asio::awaitable<void> copy_batch(std::shared_ptr<RegionClaim> claim);
  asio::awaitable<void> finish();
  asio::awaitable<void> sleep(std::chrono::steady_clock::duration d);
  SourceLoad source_load() const;
  // Bytes the next batch of `kind` may carry now; 0: wait (background_allowance).
  uint64_t allowance(const HydrationSettings& settings, const SourceLoad& load,
                     BackgroundKind kind) const;
  // When clients_reading in `load` ends by itself, from now (for the wait before re-planning).
  std::chrono::steady_clock::duration reading_left(const SourceLoad& load) const;
  std::shared_ptr<RegionClaim> claim_readahead(const ClaimPolicy& batch);
  std::shared_ptr<RegionClaim> claim_prefetch(const ClaimPolicy& batch);

  CloneCore& core_;
  asio::any_io_executor executor_;
  // Shared so a wake() posted just before destruction finds nothing rather than freed memory.
  std::shared_ptr<asio::steady_timer> wake_timer_;
  RateLimiter limiter_;
  WindowController window_;
  TaskGroup batches_;
  std::shared_ptr<PrefetchOrder> prefetch_;
  ReadaheadHints readahead_;
  AsyncEvent completed_;
  AsyncEvent stopped_event_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> running_{false};
  std::atomic<uint64_t> inflight_requests_{0};
  std::atomic<uint64_t> failed_batches_{0};

  mutable std::mutex scan_mutex_;
  std::vector<bool> scanned_chunks_;
  std::vector<uint64_t> chunk_hole_bytes_;  // per chunk: bytes of regions wholly in holes
};

}  // namespace hydrate
