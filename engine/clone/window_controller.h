#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

namespace hydrate {

// Sizes the background in-flight window to the link instead of fixing it (DESIGN §5: the
// window must cover the bandwidth-delay product). Delay-based, in the spirit of TCP Vegas: the
// smallest per-request latency seen recently is the path's round trip with empty queues; while
// measured latency stays close to it, more bytes in flight buy more throughput, so the window
// grows; once requests queue at the source (latency well above the minimum), more in flight only
// adds delay — to on-demand reads too — so it shrinks. Bounded by [min, max_inflight].
class WindowController {
 public:
  using Clock = std::chrono::steady_clock;

  WindowController(uint64_t min_bytes, uint64_t max_bytes);

  void set_bounds(uint64_t min_bytes, uint64_t max_bytes);
  uint64_t window() const;

  // One background request of `bytes` took `latency`.
  void on_complete(uint64_t bytes, Clock::duration latency, Clock::time_point now = Clock::now());

 private:
  void adjust(Clock::time_point now);

  mutable std::mutex mutex_;
  uint64_t min_;
  uint64_t max_;
  uint64_t window_;
  double min_latency_ = 0;
  Clock::time_point min_latency_since_{};
  double sum_latency_ = 0;
  uint64_t samples_ = 0;
  uint64_t bytes_since_adjust_ = 0;
  Clock::time_point last_adjust_{};
};

}  // namespace hydrate
