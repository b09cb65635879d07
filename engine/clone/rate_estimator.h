#pragma once

#include <chrono>
#include <cstdint>

namespace hydrate {

// A recent rate of a growing byte counter for status (`rate_bytes_per_second`,
// `data_rate_bytes_per_second`), exponentially weighted so one slow or fast second does not
// swing the ETA. It is sampled when status is read, not on a timer: a sample closer than
// kMinInterval to the previous one keeps the current estimate, so a fast poll does not turn
// into noise. The caller passes the time, so tests can drive it with a fake clock.
// Not thread-safe: CloneVolume holds it under its rate mutex.
class RateEstimator {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr auto kMinInterval = std::chrono::milliseconds(200);

  // Feeds the counter's value at `now` and returns the estimate in bytes per second (0 until
  // a second sample). A counter that went backwards (it never should) restarts the estimate.
  double update(Clock::time_point now, uint64_t total);

 private:
  bool started_ = false;
  Clock::time_point time_{};
  uint64_t total_ = 0;
  double rate_ = 0;
};

}  // namespace hydrate
