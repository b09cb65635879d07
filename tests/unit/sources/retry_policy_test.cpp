#include "engine/sources/retry_policy.h"

#include <gtest/gtest.h>

namespace hydrate {
namespace {

using std::chrono::milliseconds;

TEST(RetryPolicy, GrowsExponentiallyUpToTheCap) {
  RetryPolicy policy;  // 100 ms -> 10 s, ×2, ±20 %
  for (int sample = 0; sample < 200; ++sample) {
    EXPECT_GE(policy.delay(0), milliseconds(80));
    EXPECT_LE(policy.delay(0), milliseconds(120));
    EXPECT_GE(policy.delay(3), milliseconds(640));
    EXPECT_LE(policy.delay(3), milliseconds(960));
    EXPECT_LE(policy.delay(10), milliseconds(10'000));
    EXPECT_GE(policy.delay(10), milliseconds(8'000));
    EXPECT_LE(policy.delay(1000), milliseconds(10'000));  // no overflow far out
  }
}

TEST(RetryPolicy, JitterSpreadsDelays) {
  RetryPolicy policy;
  std::set<long long> seen;
  for (int i = 0; i < 100; ++i) seen.insert(policy.delay(2).count());
  EXPECT_GT(seen.size(), 10u);
  policy.jitter = 0;
  EXPECT_EQ(policy.delay(2), milliseconds(400));
  EXPECT_EQ(policy.delay(2), milliseconds(400));
}

}  // namespace
}  // namespace hydrate
