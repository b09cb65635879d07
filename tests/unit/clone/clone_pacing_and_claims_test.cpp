// The small control pieces of background hydration, with an injected clock.
#include <gtest/gtest.h>

#include "engine/clone/inflight_table.h"
#include "engine/clone/rate_limiter.h"
#include "engine/clone/window_controller.h"

namespace hydrate {
namespace {

using namespace std::chrono_literals;

TEST(RateLimiter, UnlimitedNeverWaits) {
  RateLimiter limiter(0);
  EXPECT_EQ(limiter.reserve(1u << 30), RateLimiter::Clock::duration::zero());
}

TEST(RateLimiter, PacesToTheConfiguredRate) {
  RateLimiter limiter(100u << 20);  // 100 MiB/s
  auto t = RateLimiter::Clock::now();
  auto total = RateLimiter::Clock::duration::zero();
  // 50 MiB at once: the bucket starts empty, so half a second of debt.
  total += limiter.reserve(50u << 20, t);
  EXPECT_NEAR(std::chrono::duration<double>(total).count(), 0.5, 0.01);
  // One second later the debt is paid and another 100 MiB-in-a-second is allowed.
  auto wait = limiter.reserve(50u << 20, t + 1s);
  EXPECT_EQ(wait, RateLimiter::Clock::duration::zero());
}

TEST(RateLimiter, IdleTimeDoesNotBuyAnUnboundedBurst) {
  RateLimiter limiter(10u << 20);
  auto t = RateLimiter::Clock::now();
  limiter.reserve(0, t);
  auto wait = limiter.reserve(30u << 20, t + 1h);
  // At most one second of tokens was saved: 20 MiB of debt = 2 s.
  EXPECT_NEAR(std::chrono::duration<double>(wait).count(), 2.0, 0.01);
}

TEST(WindowController, GrowsWhileLatencyStaysAtTheMinimum) {
  WindowController w(1u << 20, 64u << 20);
  auto t = WindowController::Clock::now();
  for (int i = 0; i < 200; ++i) w.on_complete(1u << 20, 20ms, t + i * 1ms);
  EXPECT_EQ(w.window(), 64u << 20);
}

TEST(WindowController, ShrinksWhenRequestsQueue) {
  WindowController w(1u << 20, 64u << 20);
  auto t = WindowController::Clock::now();
  for (int i = 0; i < 200; ++i) w.on_complete(1u << 20, 20ms, t + i * 1ms);
  ASSERT_EQ(w.window(), 64u << 20);
  for (int i = 0; i < 400; ++i) w.on_complete(1u << 20, 80ms, t + 1s + i * 1ms);
  EXPECT_LT(w.window(), 64u << 20);
  EXPECT_GE(w.window(), 1u << 20);
}

TEST(InflightTable, FindsClaimsByAnyRegionTheyCover) {
  InflightTable table;
  std::lock_guard lock(table.mutex());
  auto a = table.insert(RegionClaim::Kind::fetch, 10, 5, false);
  auto b = table.insert(RegionClaim::Kind::write, 20, 1, true);
  EXPECT_EQ(table.find(9), nullptr);
  EXPECT_EQ(table.find(10), a);
  EXPECT_EQ(table.find(14), a);
  EXPECT_EQ(table.find(15), nullptr);
  EXPECT_EQ(table.find(20), b);
  EXPECT_EQ(table.next_claimed(0), 10u);
  EXPECT_EQ(table.next_claimed(12), 12u);
  EXPECT_EQ(table.next_claimed(15), 20u);
  EXPECT_EQ(table.next_claimed(21), UINT64_MAX);
  EXPECT_EQ(table.claimed_regions(), 6u);
  table.erase(*a);
  EXPECT_EQ(table.find(12), nullptr);
  EXPECT_EQ(table.claimed_regions(), 1u);
}

}  // namespace
}  // namespace hydrate
