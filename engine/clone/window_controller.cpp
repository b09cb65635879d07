#include "engine/clone/window_controller.h"

#include <algorithm>

namespace hydrate {
namespace {
// Forget the minimum latency after this long, so a route change is noticed.
constexpr auto kMinLatencyLifetime = std::chrono::seconds(10);
// Measured / minimum latency: below kGrowBelow the source is not yet saturated; above
// kShrinkAbove requests spend as long queueing as being served. In between, hold.
constexpr double kGrowBelow = 1.25;
constexpr double kShrinkAbove = 2.0;
}  // namespace

WindowController::WindowController(uint64_t min_bytes, uint64_t max_bytes)
    : min_(min_bytes), max_(std::max(min_bytes, max_bytes)), window_(min_) {}

void WindowController::set_bounds(uint64_t min_bytes, uint64_t max_bytes) {
  std::lock_guard lock(mutex_);
  min_ = min_bytes;
  max_ = std::max(min_bytes, max_bytes);
  window_ = std::clamp(window_, min_, max_);
}

uint64_t WindowController::window() const {
  std::lock_guard lock(mutex_);
  return window_;
}

void WindowController::on_complete(uint64_t bytes, Clock::duration latency,
                                   Clock::time_point now) {
  if (bytes == 0) return;
  std::lock_guard lock(mutex_);
  // Plain latency, not per byte: over a WAN the round trip dominates every batch size, and
  // on a fast link the window hardly matters because the copy is CPU-bound.
  double seconds = std::chrono::duration<double>(latency).count();
  if (min_latency_ == 0 || seconds < min_latency_ ||
      now - min_latency_since_ > kMinLatencyLifetime) {
    min_latency_ = seconds;
    min_latency_since_ = now;
  }
  sum_latency_ += seconds;
  ++samples_;
  bytes_since_adjust_ += bytes;
  // Adjust once per window's worth of completions: one round of feedback per round trip.
  if (bytes_since_adjust_ >= window_) adjust(now);
}

void WindowController::adjust(Clock::time_point now) {
  double average = sum_latency_ / static_cast<double>(samples_);
  double queueing = average / min_latency_;
  double factor = 1.0;
  if (queueing < kGrowBelow)
    factor = 2.0;  // the source had idle capacity: more in flight buys throughput
  else if (queueing > kShrinkAbove)
    factor = 0.75;  // requests wait at the source: more in flight only adds delay
  auto next = static_cast<uint64_t>(static_cast<double>(window_) * factor);
  window_ = std::clamp(next, min_, max_);
  sum_latency_ = 0;
  samples_ = 0;
  bytes_since_adjust_ = 0;
  last_adjust_ = now;
}

}  // namespace hydrate
