#include "engine/blocking_pool.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "tests/support/run_coroutine.h"
#include "tests/unit/engine_io/io_test_util.h"

namespace hydrate {
namespace {

using test::run_coroutine;

TEST(BlockingPool, RunsOnPoolThreadAndResumesOnCallersThread) {
  asio::io_context context;
  // The pool is destroyed first: its threads still drop work guards on the context after
  // a call completes, so the context must outlive them.
  BlockingPool pool(2);
  const auto caller = std::this_thread::get_id();
  std::thread::id ran_on, resumed_on;
  int value = run_coroutine(context, [&]() -> asio::awaitable<int> {
    int v = co_await pool.run([&] {
      ran_on = std::this_thread::get_id();
      return 42;
    });
    resumed_on = std::this_thread::get_id();
    co_return v;
  }());
  EXPECT_EQ(value, 42);
  EXPECT_NE(ran_on, caller);
  EXPECT_EQ(resumed_on, caller);
}

TEST(BlockingPool, ThreadsStartOnFirstUse) {
  asio::io_context context;  // outlives the pool: its threads drop work guards on it
  BlockingPool pool(3);
  EXPECT_FALSE(pool.started());
  EXPECT_EQ(pool.threads(), 3u);
  run_coroutine(context, [&]() -> asio::awaitable<void> { co_await pool.run([] {}); }());
  EXPECT_TRUE(pool.started());
}

TEST(BlockingPool, ExceptionReachesTheCaller) {
  asio::io_context context;
  // The pool is destroyed first: its threads still drop work guards on the context after
  // a call completes, so the context must outlive them.
  BlockingPool pool(1);
  EXPECT_THROW(run_coroutine(context,
                             [&]() -> asio::awaitable<int> {
                               co_return co_await pool.run(
                                   []() -> int { throw std::runtime_error("boom"); });
                             }()),
               std::runtime_error);
  bool void_threw = false;
  run_coroutine(context, [&]() -> asio::awaitable<void> {
    try {
      co_await pool.run([] { throw std::logic_error("void boom"); });
    } catch (const std::logic_error&) {
      void_threw = true;
    }
  }());
  EXPECT_TRUE(void_threw);
}

// Every thread of the pool runs a call at the same time: a call that sleeps (fdatasync) must
// not hold up the others. Each call waits until all of them have arrived; that can only happen
// when they run concurrently. The wait is bounded so a broken pool fails instead of hanging.
TEST(BlockingPool, CallsRunConcurrentlyUpToPoolSize) {
  constexpr int kThreads = 6;
  asio::io_context context;
  // The pool is destroyed first: its threads still drop work guards on the context after
  // a call completes, so the context must outlive them.
  BlockingPool pool(kThreads);
  std::mutex mutex;
  std::condition_variable arrived_cv;
  int arrived = 0;
  int met = 0;
  auto call = [&]() -> asio::awaitable<void> {
    bool all_met = co_await pool.run([&] {
      std::unique_lock lock(mutex);
      ++arrived;
      arrived_cv.notify_all();
      return arrived_cv.wait_for(lock, std::chrono::seconds(30),
                                 [&] { return arrived == kThreads; });
    });
    if (all_met) ++met;
  };
  for (int i = 0; i < kThreads; ++i) asio::co_spawn(context, call(), asio::detached);
  context.run_for(std::chrono::seconds(60));
  EXPECT_EQ(met, kThreads);
}

TEST(BlockingPool, SharedPoolIsOneInstance) {
  EXPECT_EQ(&BlockingPool::shared(), &BlockingPool::shared());
  EXPECT_GE(BlockingPool::shared().threads(), 1u);
}

}  // namespace
}  // namespace hydrate
