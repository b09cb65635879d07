#include "engine/sources/retry_policy.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace hydrate {

std::chrono::milliseconds RetryPolicy::delay(unsigned retry) const {
  thread_local std::minstd_rand random{std::random_device{}()};
  const double cap = static_cast<double>(max.count());
  // Beyond a few dozen doublings the cap has long been reached; stop before pow() overflows.
  double base = static_cast<double>(initial.count()) *
                std::pow(std::max(multiplier, 1.0), std::min(retry, 64u));
  base = std::min(base, cap);
  const double spread = std::clamp(jitter, 0.0, 1.0);
  std::uniform_real_distribution<double> factor(1.0 - spread, 1.0 + spread);
  const double jittered = std::clamp(base * factor(random), 0.0, cap);
  return std::chrono::milliseconds(static_cast<long long>(std::llround(jittered)));
}

}  // namespace hydrate
