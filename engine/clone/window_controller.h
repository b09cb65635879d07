#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

namespace hydrate {

// Sizes the background copy to the link instead of fixing it (DESIGN §5: the window must cover
// the bandwidth-delay product, and on-demand reads must not queue behind it).
//
// Batch: about kBatchTime's worth of the measured copy rate (a power-of-two number of regions,
// between one region and the configured batch), so no single background reply holds a slow
// link for long: 4 MiB is 1.7 s at 20 Mbit/s, 33 ms at 1 Gbit/s. It starts small and grows
// with the rate, so a client's first reads on a slow link never wait behind big batches.
//
// Window: delay-based, in the spirit of TCP Vegas. The smallest latency of a batch seen
// recently is the path's round trip with empty queues; while measured latency stays close to
// it, more bytes in flight buy throughput, so the window grows; once requests queue at the
// source (latency well above the minimum), more in flight only adds delay — to on-demand reads
// too — so it shrinks. Bounded by [2 batches, max_inflight]. Only batches of the current size
// feed the latency statistics: a batch's latency includes its transfer time.
//
// Thread-safe.
class WindowController {
 public:
  using Clock = std::chrono::steady_clock;

  // `configured_batch`: the largest batch (hydration.batch); `region`: the map's region size.
  WindowController(uint64_t configured_batch, uint64_t region, uint64_t max_bytes);

  void set_limits(uint64_t configured_batch, uint64_t max_bytes);
  uint64_t window() const;
  uint64_t batch() const;
  // The smallest latency of a batch seen recently (round trip plus one batch's transfer), or
  // zero before the first measurement.
  Clock::duration min_latency() const;

  // One background batch of `bytes` took `latency`.
  void on_complete(uint64_t bytes, Clock::duration latency, Clock::time_point now = Clock::now());

 private:
  void adjust(Clock::time_point now);
  void resize_batch_locked();

  mutable std::mutex mutex_;
  const uint64_t region_;
  uint64_t configured_batch_;
  uint64_t max_;
  uint64_t batch_;
  uint64_t window_;
  double rate_ = 0;  // bytes per second, smoothed
  double min_latency_ = 0;
  double last_min_latency_ = 0;  // survives batch-size changes, for min_latency()
  Clock::time_point min_latency_since_{};
  double sum_latency_ = 0;
  uint64_t samples_ = 0;
  uint64_t bytes_since_adjust_ = 0;
  Clock::time_point last_adjust_{};
};

}  // namespace hydrate
