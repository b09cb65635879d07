#include "engine/clone/rate_estimator.h"

namespace hydrate {

double RateEstimator::update(Clock::time_point now, uint64_t total) {
  if (!started_ || total < total_ || now < time_) {
    started_ = true;
    time_ = now;
    total_ = total;
    rate_ = 0;
    return rate_;
  }
  if (now - time_ < kMinInterval) return rate_;
  const double dt = std::chrono::duration<double>(now - time_).count();
  const double sample = static_cast<double>(total - total_) / dt;
  // The first sample stands alone; later ones are averaged half and half with the history.
  rate_ = rate_ == 0 ? sample : 0.5 * rate_ + 0.5 * sample;
  time_ = now;
  total_ = total;
  return rate_;
}

}  // namespace hydrate
