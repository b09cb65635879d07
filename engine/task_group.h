#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <atomic>
#include <memory>
#include <vector>

#include "engine/async_event.h"

namespace hydrate {

// Structured concurrency for a dynamic number of coroutines: spawn() starts each at once on
// `executor`; wait() completes when every spawned task has finished. asio 1.22 has no ranged
// parallel_group, and awaiting tasks one by one would serialise them.
class TaskGroup {
 public:
  explicit TaskGroup(asio::any_io_executor executor);
  ~TaskGroup();
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;

  void spawn(asio::awaitable<void> task);
  // Must be awaited before the group is destroyed if anything was spawned.
  asio::awaitable<void> wait();
  size_t running() const;

 private:
  struct State {
    std::atomic<size_t> running{0};
    std::mutex mutex;
    std::shared_ptr<AsyncEvent> idle;  // set when running drops to 0
  };
  static asio::awaitable<void> run_one(asio::awaitable<void> task, std::shared_ptr<State> state);

  asio::any_io_executor executor_;
  std::shared_ptr<State> state_;
};

}  // namespace hydrate
