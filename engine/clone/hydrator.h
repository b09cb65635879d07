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
#include "engine/clone/clone_core.h"
#include "engine/clone/rate_limiter.h"
#include "engine/clone/window_controller.h"
#include "engine/profile/prefetch_order.h"

namespace hydrate {

// Background hydration (DESIGN §5). First it fetches the source's allocation map in a few
// large BLOCK_STATUS calls and hydrates holes without moving data; then it walks the map and
// copies contiguous unhydrated regions in large batches, keeping an adaptive window of bytes in
// flight. On-demand work goes first: while client misses are in flight the background gives up
// source capacity, but never below its guaranteed share. When everything is hydrated and
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
  bool may_issue(const HydrationSettings& settings, uint64_t batch_bytes) const;
  std::shared_ptr<RegionClaim> claim_prefetch(const ClaimPolicy& batch);

  CloneCore& core_;
  asio::any_io_executor executor_;
  // Shared so a wake() posted just before destruction finds nothing rather than freed memory.
  std::shared_ptr<asio::steady_timer> wake_timer_;
  RateLimiter limiter_;
  WindowController window_;
  TaskGroup batches_;
  std::shared_ptr<PrefetchOrder> prefetch_;
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
