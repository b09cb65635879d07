#include "engine/clone/rate_limiter.h"

#include <algorithm>

namespace hydrate {

RateLimiter::RateLimiter(uint64_t bytes_per_second)
    : rate_(bytes_per_second), last_(Clock::now()) {}

void RateLimiter::set_rate(uint64_t bytes_per_second) {
  std::lock_guard lock(mutex_);
  rate_ = bytes_per_second;
  tokens_ = 0;
  last_ = Clock::now();
}

uint64_t RateLimiter::rate() const {
  std::lock_guard lock(mutex_);
  return rate_;
}

RateLimiter::Clock::duration RateLimiter::reserve(uint64_t bytes, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (rate_ == 0) return Clock::duration::zero();
  double elapsed = std::chrono::duration<double>(now - last_).count();
  last_ = now;
  double capacity = static_cast<double>(rate_);
  tokens_ = std::min(capacity, tokens_ + elapsed * static_cast<double>(rate_));
  tokens_ -= static_cast<double>(bytes);
  if (tokens_ >= 0) return Clock::duration::zero();
  auto wait = std::chrono::duration<double>(-tokens_ / static_cast<double>(rate_));
  return std::chrono::duration_cast<Clock::duration>(wait);
}

}  // namespace hydrate
