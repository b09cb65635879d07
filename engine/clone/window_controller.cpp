#include "engine/clone/window_controller.h"

#include <algorithm>
#include <bit>

namespace hydrate {
namespace {
// Forget the minimum latency after this long, so a route change is noticed.
constexpr auto kMinLatencyLifetime = std::chrono::seconds(10);
// Measured / minimum latency: below kGrowBelow the source is not yet saturated; above
// kShrinkAbove requests spend as long queueing as being served. In between, hold.
constexpr double kGrowBelow = 1.25;
constexpr double kShrinkAbove = 2.0;
// A batch is about this long on the wire at the measured rate: what a client's read may wait
// behind one background reply.
constexpr double kBatchTime = 0.025;
// The first batches, before any rate is known: small enough for a 20 Mbit/s link.
constexpr uint64_t kStartBatch = 256u << 10;
// Weight of a new rate sample.
constexpr double kRateSmoothing = 0.5;
}  // namespace

WindowController::WindowController(uint64_t configured_batch, uint64_t region, uint64_t max_bytes)
    : region_(std::max<uint64_t>(1, region)),
      configured_batch_(std::max(region_, configured_batch)),
      max_(max_bytes) {
  batch_ = std::clamp(kStartBatch, region_, configured_batch_);
  max_ = std::max(max_, batch_);
  window_ = std::min(2 * batch_, max_);
}

void WindowController::set_limits(uint64_t configured_batch, uint64_t max_bytes) {
  std::lock_guard lock(mutex_);
  configured_batch_ = std::max(region_, configured_batch);
  max_ = max_bytes;
  resize_batch_locked();
}

uint64_t WindowController::window() const {
  std::lock_guard lock(mutex_);
  return window_;
}

uint64_t WindowController::batch() const {
  std::lock_guard lock(mutex_);
  return batch_;
}

WindowController::Clock::duration WindowController::min_latency() const {
  std::lock_guard lock(mutex_);
  return std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(last_min_latency_));
}

void WindowController::resize_batch_locked() {
  uint64_t want = rate_ > 0 ? static_cast<uint64_t>(rate_ * kBatchTime) : batch_;
  // A power-of-two number of regions, so the size (and its latency class) changes seldom.
  uint64_t regions = std::bit_floor(std::max<uint64_t>(1, want / region_));
  uint64_t next = std::clamp(regions * region_, region_, configured_batch_);
  if (next != batch_) {
    batch_ = next;
    min_latency_ = 0;  // latencies of the old size say nothing about the new one
    sum_latency_ = 0;
    samples_ = 0;
  }
  max_ = std::max(max_, batch_);
  window_ = std::clamp(window_, std::min(2 * batch_, max_), max_);
}

void WindowController::on_complete(uint64_t bytes, Clock::duration latency, Clock::time_point now) {
  if (bytes == 0) return;
  std::lock_guard lock(mutex_);
  if (last_adjust_ == Clock::time_point{}) last_adjust_ = now - latency;
  bytes_since_adjust_ += bytes;
  // Plain latency, not per byte: over a WAN the round trip dominates, and batches of one size
  // are compared only with each other. Runs cut short by clients' claims only count as bytes.
  if (bytes == batch_) {
    double seconds = std::chrono::duration<double>(latency).count();
    if (min_latency_ == 0 || seconds < min_latency_ ||
        now - min_latency_since_ > kMinLatencyLifetime) {
      min_latency_ = seconds;
      min_latency_since_ = now;
      last_min_latency_ = seconds;
    }
    sum_latency_ += seconds;
    ++samples_;
  }
  // Adjust once per window's worth of completions: one round of feedback per round trip.
  if (bytes_since_adjust_ >= window_) adjust(now);
}

void WindowController::adjust(Clock::time_point now) {
  double elapsed = std::chrono::duration<double>(now - last_adjust_).count();
  if (elapsed > 0) {
    double sample = static_cast<double>(bytes_since_adjust_) / elapsed;
    rate_ = rate_ == 0 ? sample : kRateSmoothing * sample + (1 - kRateSmoothing) * rate_;
  }
  if (samples_ > 0 && min_latency_ > 0) {
    double queueing = sum_latency_ / static_cast<double>(samples_) / min_latency_;
    double factor = 1.0;
    if (queueing < kGrowBelow)
      factor = 2.0;  // the source had idle capacity: more in flight buys throughput
    else if (queueing > kShrinkAbove)
      // Requests wait at the source: more in flight only adds delay. Back off in proportion,
      // so a window blown up by a burst (a server's full token bucket) returns in a few rounds.
      factor = std::clamp(kGrowBelow / queueing, 0.5, 0.75);
    window_ = static_cast<uint64_t>(static_cast<double>(window_) * factor);
  }
  sum_latency_ = 0;
  samples_ = 0;
  bytes_since_adjust_ = 0;
  last_adjust_ = now;
  resize_batch_locked();
}

}  // namespace hydrate
