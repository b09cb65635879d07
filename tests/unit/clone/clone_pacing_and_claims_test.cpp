// The small control pieces of background hydration, with an injected clock.
#include <gtest/gtest.h>

#include "engine/clone/background_admission.h"
#include "engine/clone/inflight_table.h"
#include "engine/clone/rate_limiter.h"
#include "engine/clone/window_controller.h"

namespace hydrate {
namespace {

using namespace std::chrono_literals;

// Microseconds between completions of `bytes`-byte batches at `rate` bytes per second.
int64_t w_gap(uint64_t bytes, double rate) {
  return static_cast<int64_t>(static_cast<double>(bytes) / rate * 1e6);
}

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

// Batches of one region here (batch = region = 1 MiB), so only the window moves.
TEST(WindowController, GrowsWhileLatencyStaysAtTheMinimum) {
  WindowController w(1u << 20, 1u << 20, 64u << 20);
  auto t = WindowController::Clock::now();
  for (int i = 0; i < 200; ++i) w.on_complete(1u << 20, 20ms, t + i * 1ms);
  EXPECT_EQ(w.window(), 64u << 20);
}

TEST(WindowController, ShrinksWhenRequestsQueue) {
  WindowController w(1u << 20, 1u << 20, 64u << 20);
  auto t = WindowController::Clock::now();
  for (int i = 0; i < 200; ++i) w.on_complete(1u << 20, 20ms, t + i * 1ms);
  ASSERT_EQ(w.window(), 64u << 20);
  for (int i = 0; i < 400; ++i) w.on_complete(1u << 20, 80ms, t + 1s + i * 1ms);
  EXPECT_LT(w.window(), 64u << 20);
  EXPECT_GE(w.window(), 1u << 20);
}

// Completions of `batch`-byte batches arriving `gap` apart, `latency` each, from `t` on.
WindowController::Clock::time_point feed(WindowController& w, WindowController::Clock::time_point t,
                                         int count, std::chrono::microseconds gap,
                                         std::chrono::milliseconds latency) {
  for (int i = 0; i < count; ++i) {
    t += gap;
    w.on_complete(w.batch(), latency, t);
  }
  return t;
}

// Before any rate is known a batch is small, so a client's first reads on a slow link do not
// wait behind 4 MiB replies; then it is ~25 ms of the measured rate.
TEST(WindowController, BatchStartsSmallThenFollowsTheLinkRate) {
  WindowController fast(4u << 20, 64u << 10, 64u << 20);
  EXPECT_EQ(fast.batch(), 256u << 10);
  EXPECT_EQ(fast.window(), 512u << 10);
  // ~1 Gbit/s: 125 MB/s answered. 25 ms of it is 3.1 MB: 32 regions (a power of two) = 2 MiB.
  auto t = WindowController::Clock::now();
  for (int round = 0; round < 20; ++round) {
    auto gap = std::chrono::microseconds(w_gap(fast.batch(), 125e6));
    t = feed(fast, t, 8, gap, 20ms);
  }
  EXPECT_EQ(fast.batch(), 2u << 20);
  EXPECT_GE(fast.window(), 2 * fast.batch());

  // ~20 Mbit/s: 2.5 MB/s; 25 ms is 62 KB, less than a region: one region per batch.
  WindowController slow(4u << 20, 64u << 10, 64u << 20);
  t = WindowController::Clock::now();
  for (int round = 0; round < 20; ++round) {
    auto gap = std::chrono::microseconds(w_gap(slow.batch(), 2.5e6));
    t = feed(slow, t, 8, gap, 20ms);
  }
  EXPECT_EQ(slow.batch(), 64u << 10);
  EXPECT_GE(slow.window(), 2 * slow.batch());
}

// The batch never exceeds hydration.batch, however fast the link.
TEST(WindowController, BatchNeverExceedsTheConfiguredBatch) {
  WindowController w(1u << 20, 64u << 10, 64u << 20);
  auto t = WindowController::Clock::now();
  for (int round = 0; round < 20; ++round) t = feed(w, t, 8, 10us, 1ms);
  EXPECT_EQ(w.batch(), 1u << 20);
}

constexpr uint64_t MiB = 1u << 20;

constexpr uint64_t KiB64 = 64u << 10;
constexpr auto kPredicted = BackgroundKind::predicted;
constexpr auto kBulk = BackgroundKind::bulk;

// DESIGN §5, on-demand first: clients' bytes in flight take their place in the window before
// the background's. Fails if the rule ignores on-demand load.
TEST(BackgroundAdmission, OnDemandReadsTakeTheirPlaceInTheWindowFirst) {
  SourceLoad idle{.window = 8 * MiB, .background_bytes = 4 * MiB, .background_batches = 2};
  EXPECT_EQ(background_allowance(idle, 2 * MiB, KiB64, 0.25, kPredicted), 2 * MiB);
  SourceLoad busy = idle;
  busy.on_demand_bytes = 3 * MiB;
  busy.clients_reading = true;
  EXPECT_EQ(background_allowance(busy, 2 * MiB, KiB64, 0.25, kPredicted), 0u);
}

// While clients read, the bulk walk keeps only its share of the window, though the window has
// room: every background byte ahead of a client's next read delays it. Predicted batches (the
// clients' next reads) may still fill the window. Fails if clients_reading is ignored, or if
// predicted batches are held to the share too.
TEST(BackgroundAdmission, WhileClientsReadBulkKeepsOnlyItsShare) {
  SourceLoad load{.window = 8 * MiB, .background_bytes = 1 * MiB, .background_batches = 1};
  EXPECT_EQ(background_allowance(load, 2 * MiB, KiB64, 0.25, kBulk), 2 * MiB) << "link idle";
  load.clients_reading = true;  // a read finished a moment ago: none in flight
  EXPECT_EQ(background_allowance(load, 2 * MiB, KiB64, 0.25, kBulk), 0u);
  EXPECT_EQ(background_allowance(load, 2 * MiB, KiB64, 0.25, kPredicted), 2 * MiB);
}

// ...in batches no larger than the share, so what one bulk reply puts ahead of a client's
// read stays within it.
TEST(BackgroundAdmission, BulkBatchesShrinkToTheShareWhileClientsRead) {
  SourceLoad load{.window = 1 * MiB, .clients_reading = true};
  EXPECT_EQ(background_allowance(load, 1 * MiB, KiB64, 0.25, kBulk), 256u << 10);
  EXPECT_EQ(background_allowance(load, 1 * MiB, KiB64, 0.25, kPredicted), 1 * MiB);
  load.clients_reading = false;
  EXPECT_EQ(background_allowance(load, 1 * MiB, KiB64, 0.25, kBulk), 1 * MiB);
}

// DESIGN §5, guaranteed share: however busy the clients, the background keeps min_share of
// the window. Fails if the share is removed (or ignored).
TEST(BackgroundAdmission, BackgroundKeepsItsMinimumShareUnderClientLoad) {
  SourceLoad full{.window = 8 * MiB,
                  .background_bytes = 1 * MiB,
                  .background_batches = 1,
                  .on_demand_bytes = 8 * MiB,
                  .clients_reading = true};
  EXPECT_EQ(background_allowance(full, 1 * MiB, KiB64, 0.25, kBulk), 1 * MiB);  // 2 <= 2 MiB
  EXPECT_EQ(background_allowance(full, 2 * MiB, KiB64, 0.25, kPredicted), 0u);  // 3 > 2 MiB
  EXPECT_EQ(background_allowance(full, 1 * MiB, KiB64, 0.0, kBulk), 0u);
  EXPECT_EQ(background_allowance(full, 7 * MiB, KiB64, 1.0, kBulk), 7 * MiB);
}

// Progress never stops: with nothing of its own in flight, the background may always send one
// batch (of one region at least, when its share is nothing).
TEST(BackgroundAdmission, OneBatchAlwaysMoves) {
  SourceLoad swamped{.window = 1 * MiB, .on_demand_bytes = 64 * MiB, .clients_reading = true};
  EXPECT_EQ(background_allowance(swamped, 4 * MiB, KiB64, 0.0, kBulk), KiB64);
  EXPECT_EQ(background_allowance(swamped, 4 * MiB, KiB64, 0.0, kPredicted), 4 * MiB);
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
