#include "engine/blocking_pool.h"

#include <algorithm>
#include <atomic>

namespace hydrate {
namespace {

std::atomic<unsigned> g_shared_threads{BlockingPool::kDefaultThreads};

}  // namespace

BlockingPool::BlockingPool(unsigned threads) : threads_(std::max(1u, threads)) {}

BlockingPool::~BlockingPool() {
  std::unique_ptr<asio::thread_pool> pool;
  {
    std::lock_guard lock(mutex_);
    pool = std::move(pool_);
  }
  // join() without stop(): queued calls still run, so no awaiting coroutine is left holding a
  // half-finished write.
  if (pool) pool->join();
}

bool BlockingPool::started() const {
  std::lock_guard lock(mutex_);
  return pool_ != nullptr;
}

asio::thread_pool& BlockingPool::pool() {
  std::lock_guard lock(mutex_);
  if (!pool_) pool_ = std::make_unique<asio::thread_pool>(threads_);
  return *pool_;
}

BlockingPool& BlockingPool::shared() {
  static BlockingPool pool(g_shared_threads.load());
  return pool;
}

void BlockingPool::set_shared_threads(unsigned threads) {
  g_shared_threads.store(std::max(1u, threads));
}

}  // namespace hydrate
