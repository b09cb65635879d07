#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

namespace hydrate {

// Token bucket for background hydration bandwidth (`hydration.rate`, live-adjustable). Rate 0
// means unlimited. The bucket holds at most one second of tokens so a pause does not buy a
// burst that floods the source afterwards.
class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  explicit RateLimiter(uint64_t bytes_per_second = 0);

  void set_rate(uint64_t bytes_per_second);
  uint64_t rate() const;

  // Takes `bytes` tokens (going into debt if needed) and returns how long the caller must wait
  // before using them; zero when unlimited or enough tokens were there.
  Clock::duration reserve(uint64_t bytes, Clock::time_point now = Clock::now());

 private:
  mutable std::mutex mutex_;
  uint64_t rate_;
  double tokens_ = 0;
  Clock::time_point last_;
};

}  // namespace hydrate
